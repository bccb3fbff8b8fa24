"""The metadata store interface: every backend (SQLite, PostgreSQL, and later REST) implements it.

The contract suite in ``tests/contract/test_store.py`` runs unchanged against each one.
Methods take and return the entities of :mod:`loopml.core.entities`; no backend type leaks out.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from loopml.core.alerts import Alert, AlertState
from loopml.core.datasets import DatasetVersion
from loopml.core.entities import (
    ArtifactRef,
    DatasetInput,
    Environment,
    Experiment,
    LifecycleStage,
    Metric,
    Page,
    Run,
    RunStatus,
)
from loopml.core.loop import IterationStatus, LoopIteration, Outcome, Stage
from loopml.core.pipelines import PipelineRun, PipelineStatus, StepRun, StepStatus
from loopml.core.prediction_log import PredictionSegment, SegmentKind
from loopml.core.registry import (
    AliasMove,
    Approval,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)
from loopml.core.schedules import Firing, FiringStatus, Trigger

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


class MetadataStore(abc.ABC):
    """Experiments, runs, params, metrics, tags, inputs, artifacts and environments."""

    # -- experiments -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_experiment(
        self,
        name: str,
        *,
        artifact_location: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        """Create an experiment; ``AlreadyExists`` if the name is taken."""

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with that id; ``NotFound`` otherwise."""

    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with that name, or None."""

    @abc.abstractmethod
    def list_experiments(
        self,
        *,
        lifecycle_stage: LifecycleStage | None = LifecycleStage.ACTIVE,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        """Experiments ordered by id; ``lifecycle_stage=None`` lists deleted ones too."""

    @abc.abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment: ...

    @abc.abstractmethod
    def set_experiment_lifecycle(self, experiment_id: str, stage: LifecycleStage) -> None:
        """Soft-delete or restore an experiment (the default experiment cannot be deleted)."""

    @abc.abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    # -- runs --------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        user: str = "",
        artifact_uri: str = "",
        host: str = "",
        pid: int | None = None,
    ) -> Run:
        """Start a RUNNING run; a name is generated when none is given."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run with its params, tags and latest metrics; ``NotFound`` otherwise."""

    @abc.abstractmethod
    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
        notes: str | None = None,
    ) -> Run:
        """Change a run's status, end time, name or notes."""

    @abc.abstractmethod
    def set_run_lifecycle(self, run_id: str, stage: LifecycleStage) -> None:
        """Soft-delete or restore a run."""

    @abc.abstractmethod
    def heartbeat(self, run_ids: Sequence[str], time_ms: int) -> None:
        """Record that the processes owning these runs are alive."""

    @abc.abstractmethod
    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Write metric points, params and tags in one transaction.

        Params are write-once: logging a key again with another value is ``InvalidState``.
        A finished run still takes metrics (e.g. a later evaluation); a deleted run is
        ``InvalidState``.
        """

    @abc.abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abc.abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of a metric, ordered by step then timestamp."""

    @abc.abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter: str = "",
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        lifecycle_stage: LifecycleStage | None = LifecycleStage.ACTIVE,
    ) -> Page[Run]:
        """Runs matching a filter (see :mod:`loopml.core.filters`), ordered, one page at a time.

        ``experiment_ids=None`` searches every experiment. The default order is newest first.
        """

    # -- inputs, artifacts, environment ------------------------------------------------------
    @abc.abstractmethod
    def log_inputs(self, run_id: str, datasets: Iterable[DatasetInput]) -> None:
        """Record datasets the run read (the same dataset twice is recorded once)."""

    @abc.abstractmethod
    def get_inputs(self, run_id: str) -> list[DatasetInput]: ...

    @abc.abstractmethod
    def record_artifact(self, run_id: str, ref: ArtifactRef) -> None:
        """Attach a stored artifact to a run under ``ref.path`` (replacing an earlier one)."""

    @abc.abstractmethod
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactRef]: ...

    @abc.abstractmethod
    def get_artifact(self, run_id: str, path: str) -> ArtifactRef:
        """The artifact at that path of the run; ``NotFound`` lists the paths that exist."""

    @abc.abstractmethod
    def set_environment(self, run_id: str, environment: Environment) -> None: ...

    @abc.abstractmethod
    def get_environment(self, run_id: str) -> Environment | None: ...

    # -- model registry ----------------------------------------------------------------------
    @abc.abstractmethod
    def create_registered_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        """Register a model name; ``AlreadyExists`` if taken."""

    @abc.abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """The registered model with its tags, aliases and latest version; ``NotFound``."""

    @abc.abstractmethod
    def list_registered_models(
        self, *, name_like: str = "", max_results: int = 1000, page_token: str | None = None
    ) -> Page[RegisteredModel]:
        """Registered models ordered by name; ``name_like`` is a LIKE pattern (``%`` any text)."""

    @abc.abstractmethod
    def update_registered_model(self, name: str, *, description: str) -> RegisteredModel: ...

    @abc.abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def create_model_version(
        self,
        name: str,
        *,
        source: str,
        digest: str,
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        created_by: str = "",
        status: ModelVersionStatus = ModelVersionStatus.READY,
    ) -> ModelVersion:
        """Add the next version (1, 2, ...) of a registered model; numbering is atomic."""

    @abc.abstractmethod
    def get_model_version(self, name: str, version: int) -> ModelVersion: ...

    @abc.abstractmethod
    def list_model_versions(
        self, name: str, *, max_results: int = 1000, page_token: str | None = None
    ) -> Page[ModelVersion]:
        """Versions of a model, newest first."""

    @abc.abstractmethod
    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        status: ModelVersionStatus | None = None,
    ) -> ModelVersion: ...

    @abc.abstractmethod
    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str = "", reason: str = ""
    ) -> AliasMove:
        """Point ``alias`` at ``version`` atomically and record the move in the history."""

    @abc.abstractmethod
    def delete_alias(
        self, name: str, alias: str, *, actor: str = "", reason: str = ""
    ) -> AliasMove:
        """Remove an alias (recorded in the history with ``to_version=None``)."""

    @abc.abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at; ``NotFound`` names the aliases that exist."""

    @abc.abstractmethod
    def get_alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of the model's aliases (or of one alias), oldest first."""

    @abc.abstractmethod
    def record_approval(
        self, name: str, version: int, alias: str, *, approver: str, comment: str = ""
    ) -> Approval:
        """Record that ``approver`` approves ``version`` for ``alias`` (once per approver)."""

    @abc.abstractmethod
    def list_approvals(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> list[Approval]: ...

    # -- prediction log ----------------------------------------------------------------------
    @abc.abstractmethod
    def add_prediction_segment(self, segment: PredictionSegment) -> None:
        """Register a stored Parquet segment; ``AlreadyExists`` if its id is taken."""

    @abc.abstractmethod
    def list_prediction_segments(
        self,
        model_name: str,
        *,
        kind: SegmentKind | str | None = None,
        model_version: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[PredictionSegment]:
        """Segments of a model ordered by ``first_ms``; ``start_ms``/``end_ms`` keep those
        whose rows overlap ``[start_ms, end_ms)``."""

    # -- alerts ------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_alert(self, alert: Alert) -> None:
        """Store a fired alert; ``AlreadyExists`` if its id is taken."""

    @abc.abstractmethod
    def list_alerts(
        self,
        model_name: str | None = None,
        *,
        rule: str | None = None,
        since_ms: int | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Alerts newest first (by ``fired_ms``), of one model or of all; ``since_ms`` keeps
        those fired at or after it; at most ``limit`` (1 to 10000)."""

    @abc.abstractmethod
    def get_alert_states(self, model_name: str) -> dict[str, AlertState]:
        """The stored state of every rule evaluated for a model, by rule name."""

    @abc.abstractmethod
    def record_alert_evaluation(
        self, states: Sequence[AlertState], alerts: Sequence[Alert] = ()
    ) -> None:
        """Save rule states (replacing earlier ones) and add the alerts they fired, atomically."""

    # -- dataset versions --------------------------------------------------------------------
    @abc.abstractmethod
    def add_dataset_version(self, version: DatasetVersion) -> DatasetVersion:
        """Store the next version (1, 2, ...) of ``version.name``, numbered atomically.

        Content already stored under that name (same digest) returns the existing version.
        """

    @abc.abstractmethod
    def get_dataset_version(self, name: str, version: int) -> DatasetVersion:
        """One version of a dataset; ``NotFound`` names the versions that exist."""

    @abc.abstractmethod
    def list_dataset_versions(
        self, name: str | None = None, *, after_version: int = 0, since_ms: int | None = None
    ) -> list[DatasetVersion]:
        """Versions of one dataset (or of all), by name then version, oldest first.

        ``after_version`` keeps the versions numbered above it (0 keeps all); ``since_ms``
        keeps those created at or after it. ``InvalidArgument`` for a negative or non-integer
        ``after_version`` or a non-integer ``since_ms``.
        """

    # -- pipelines ---------------------------------------------------------------------------
    @abc.abstractmethod
    def create_pipeline_run(self, run: PipelineRun) -> PipelineRun:
        """Store a new pipeline run (``start_ms`` 0 means now); ``AlreadyExists`` if its id is
        taken."""

    @abc.abstractmethod
    def update_pipeline_run(
        self,
        run_id: str,
        *,
        status: PipelineStatus | None = None,
        end_ms: int | None = None,
        error: str | None = None,
        tracking_run_id: str | None = None,
    ) -> PipelineRun: ...

    @abc.abstractmethod
    def get_pipeline_run(self, run_id: str) -> PipelineRun:
        """One pipeline run; ``NotFound`` otherwise."""

    @abc.abstractmethod
    def list_pipeline_runs(
        self,
        pipeline: str | None = None,
        *,
        status: PipelineStatus | None = None,
        limit: int = 100,
    ) -> list[PipelineRun]:
        """Pipeline runs newest first (by ``start_ms``), of one pipeline or of all; at most
        ``limit`` (1 to 10000)."""

    @abc.abstractmethod
    def save_step_run(self, step: StepRun) -> None:
        """Insert or replace the step ``(step.pipeline_run_id, step.name)``; the pipeline run
        must exist (``NotFound`` otherwise)."""

    @abc.abstractmethod
    def list_step_runs(
        self,
        pipeline_run_id: str | None = None,
        *,
        pipeline: str | None = None,
        name: str | None = None,
        cache_key: str | None = None,
        tracking_run_id: str | None = None,
        statuses: Sequence[StepStatus] | None = None,
        limit: int = 1000,
    ) -> list[StepRun]:
        """Step runs matching every filter given. With ``pipeline_run_id`` they come in the
        order they were first saved; otherwise newest first (by ``start_ms``, then save order).
        The cache asks ``cache_key=k, statuses=[COMPLETED, CACHED], limit=1``."""

    # -- schedules ---------------------------------------------------------------------------
    @abc.abstractmethod
    def put_trigger(self, trigger: Trigger) -> Trigger:
        """Create or replace the trigger of that name (``created_ms`` 0 means now; replacing
        keeps the original ``created_ms`` and the trigger's firings)."""

    @abc.abstractmethod
    def get_trigger(self, name: str) -> Trigger:
        """One trigger; ``NotFound`` names the triggers that exist."""

    @abc.abstractmethod
    def list_triggers(self) -> list[Trigger]:
        """Every trigger, by name."""

    @abc.abstractmethod
    def delete_trigger(self, name: str) -> None:
        """Remove a trigger and its firings; ``NotFound`` if there is none."""

    @abc.abstractmethod
    def claim_firing(self, firing: Firing) -> bool:
        """Insert the firing if no firing of ``(firing.trigger, firing.key)`` exists yet.

        True: this caller owns it and must run it. False: someone else already did (or does).
        Atomic across processes and databases: of any number of racing claims, one wins.
        """

    @abc.abstractmethod
    def take_over_firing(
        self, trigger: str, key: str, *, owner: str, stale_before_ms: int, now_ms: int
    ) -> bool:
        """Take a CLAIMED or RUNNING firing whose ``heartbeat_ms`` is before
        ``stale_before_ms`` (its owner died): set ``owner``, status CLAIMED and both
        ``claimed_ms`` and ``heartbeat_ms`` to ``now_ms``. True if this caller took it;
        a compare-and-set, so of two racing callers one wins."""

    @abc.abstractmethod
    def update_firing(
        self,
        trigger: str,
        key: str,
        *,
        owner: str,
        status: FiringStatus | None = None,
        heartbeat_ms: int | None = None,
        pipeline_run_id: str | None = None,
        error: str | None = None,
    ) -> Firing:
        """Change a firing this ``owner`` holds; ``InvalidState`` if another owner took it
        over, ``NotFound`` if it does not exist."""

    @abc.abstractmethod
    def list_firings(
        self,
        trigger: str | None = None,
        *,
        statuses: Sequence[FiringStatus] | None = None,
        limit: int = 100,
    ) -> list[Firing]:
        """Firings newest first (by ``due_ms``, then ``claimed_ms``), of one trigger or of
        all; at most ``limit`` (1 to 10000)."""

    # -- the closed loop ---------------------------------------------------------------------
    @abc.abstractmethod
    def create_loop_iteration(self, iteration: LoopIteration) -> LoopIteration:
        """Store a new open iteration, numbered 1, 2, ... per model atomically (``created_ms``,
        ``updated_ms`` and ``heartbeat_ms`` 0 mean now). ``AlreadyExists`` if its id is taken
        or if the model already has an open (RUNNING or WAITING) iteration: of two racing
        controllers, one creates it."""

    @abc.abstractmethod
    def update_loop_iteration(
        self,
        iteration_id: str,
        *,
        owner: str,
        status: IterationStatus | None = None,
        stage: Stage | None = None,
        outcome: Outcome | None = None,
        record: dict[str, Any] | None = None,
        heartbeat_ms: int | None = None,
    ) -> LoopIteration:
        """Change an iteration this ``owner`` holds (``record`` replaces the whole record;
        ``updated_ms`` becomes now). ``InvalidState`` names the owner if another controller
        took it over; ``NotFound`` if it does not exist. Closing it (DONE or FAILED) lets the
        model open a new one."""

    @abc.abstractmethod
    def take_over_loop_iteration(
        self, iteration_id: str, *, owner: str, stale_before_ms: int, now_ms: int
    ) -> bool:
        """Take an open iteration whose ``heartbeat_ms`` is before ``stale_before_ms`` (its
        controller died): set ``owner`` and ``heartbeat_ms = now_ms``. A compare-and-set: of
        two racing callers one gets True."""

    @abc.abstractmethod
    def get_loop_iteration(self, iteration_id: str) -> LoopIteration:
        """One iteration; ``NotFound`` otherwise."""

    @abc.abstractmethod
    def list_loop_iterations(
        self,
        model_name: str | None = None,
        *,
        statuses: Sequence[IterationStatus] | None = None,
        since_ms: int | None = None,
        limit: int = 100,
    ) -> list[LoopIteration]:
        """Iterations newest first (by ``created_ms``, then number), of one model or of all;
        ``since_ms`` keeps those created at or after it; at most ``limit`` (1 to 10000)."""

    # -- lifecycle ---------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store must not be used afterwards."""

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
