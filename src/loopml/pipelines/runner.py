"""The driver of one pipeline run: decides what runs, reuses what is cached, retries, times out,
and records every step in the store as it goes.

A step is ready when every step it reads from has succeeded. Its cache key (code, parameters,
input digests, library versions) is looked up first; a hit reuses the stored outputs. A failed
step takes the steps below it with it (SKIPPED) but not the other branches, whose results are
stored and reusable by ``resume``.
"""

from __future__ import annotations

import heapq
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from loopml.core.entities import RunStatus, now_ms
from loopml.core.pipelines import (
    PipelineRun,
    PipelineStatus,
    StepInput,
    StepOutput,
    StepRun,
    StepStatus,
)
from loopml.pipelines._signals import sigterm_interrupts
from loopml.pipelines.context import TrackingPlan
from loopml.pipelines.executors.base import Executor, StepOutcome, StepTask, TaskInput
from loopml.pipelines.graph import Graph, Node

if TYPE_CHECKING:
    from loopml.core.datasets import DatasetVersion
    from loopml.tracking.client import Client

PIPELINE_TAG = "loopml.pipeline"
PIPELINE_RUN_TAG = "loopml.pipeline.run_id"
STEP_TAG = "loopml.step"
_SUCCEEDED = (StepStatus.COMPLETED, StepStatus.CACHED)
Progress = Callable[[StepRun], None]


@dataclass(slots=True)
class _Running:
    node: Node
    task: StepTask
    record: StepRun
    deadline: float | None


@dataclass(frozen=True, slots=True)
class _Parent:
    experiment_id: str
    parent_run_id: str


@dataclass(slots=True)
class RunPlan:
    """What to run: the traced graph, the pipeline's identity and its parameters."""

    pipeline: str
    experiment: str
    graph: Graph
    params: dict[str, Any]
    ref: str = ""
    trigger: str = "manual"
    resumed_from: str = ""
    reuse: dict[str, StepRun] = field(default_factory=dict)  # resume: earlier successes by node


class Runner:
    """Runs one :class:`RunPlan` on an executor; see the module docstring."""

    def __init__(
        self,
        client: Client,
        executor: Executor,
        *,
        cache: bool = True,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.store = client.store
        self.executor = executor
        self.cache = cache
        self.progress = progress
        self.records: dict[str, StepRun] = {}
        self.values: dict[str, dict[str, Any]] = {}  # node -> output name -> object in memory
        self.datasets: dict[str, DatasetVersion] = {}  # dataset node -> the version it resolved
        self._running: dict[Future[StepOutcome], _Running] = {}
        self._retries: list[tuple[float, int, str, StepTask, StepRun]] = []
        self._prepared: dict[str, tuple[list[StepInput], dict[str, TaskInput], Any]] = {}
        self._parent: _Parent | None = None

    # -- the run -----------------------------------------------------------------------------
    def run(self, plan: RunPlan) -> PipelineRun:
        from loopml.tracking.environment import current_user

        self.plan = plan
        client = self.client
        self.pipeline_run = self.store.create_pipeline_run(
            PipelineRun(
                run_id=uuid.uuid4().hex,
                pipeline=plan.pipeline,
                status=PipelineStatus.RUNNING,
                ref=plan.ref,
                params=plan.params,
                executor=self.executor.name,
                resumed_from=plan.resumed_from,
                trigger=plan.trigger,
                user=client.settings.user or current_user(),
            )
        )
        try:
            with sigterm_interrupts():
                self._loop(plan.graph)
        except BaseException as exc:
            self._abandon(exc)
            raise
        failed = [r for r in self.records.values() if r.status is StepStatus.FAILED]
        status = PipelineStatus.FAILED if failed else PipelineStatus.COMPLETED
        error = "; ".join(
            f"{r.name}: {r.error.splitlines()[-1] if r.error else ''}" for r in failed
        )
        if self._parent is not None:
            client.set_terminated(
                self._parent.parent_run_id, RunStatus.FAILED if failed else RunStatus.FINISHED
            )
        self.pipeline_run = self.store.update_pipeline_run(
            self.pipeline_run.run_id, status=status, end_ms=now_ms(), error=error
        )
        return self.pipeline_run

    def _tracking_parent(self) -> _Parent:
        """The pipeline's tracking run (its parameters and environment, the parent of its
        steps' runs), made when the first step executes: a run whose steps all come from the
        cache ran no code and has none."""
        if self._parent is None:
            plan, client = self.plan, self.client
            experiment = client.set_experiment(plan.experiment)
            parent = client.create_run(
                experiment.experiment_id,
                name=plan.pipeline,
                tags={PIPELINE_TAG: plan.pipeline, PIPELINE_RUN_TAG: self.pipeline_run.run_id},
            )
            if plan.params:
                client.log_params(parent.run_id, {k: _text(v) for k, v in plan.params.items()})
            self.pipeline_run = self.store.update_pipeline_run(
                self.pipeline_run.run_id, tracking_run_id=parent.run_id
            )
            self._parent = _Parent(experiment.experiment_id, parent.run_id)
        return self._parent

    def _loop(self, graph: Graph) -> None:
        waiting = list(graph.nodes.values())
        while waiting or self._running or self._retries:
            started = True
            while started:  # start everything ready (a start can make others ready: cache hits)
                started = False
                for node in list(waiting):
                    verdict = self._readiness(node)
                    if verdict == "wait":
                        continue
                    if verdict == "skip":
                        waiting.remove(node)
                        self._skip(node)
                        started = True
                    elif self._start(node):
                        waiting.remove(node)
                        started = True
            self._start_due_retries()
            if not self._running and not self._retries:
                if waiting and all(self._readiness(n) == "wait" for n in waiting):
                    raise RuntimeError(f"pipeline graph is stuck at {[n.name for n in waiting]}")
                continue
            self._wait()

    def _readiness(self, node: Node) -> str:
        states = [self.records.get(up) for up in node.upstream]
        if any(
            s is not None and s.status in (StepStatus.FAILED, StepStatus.SKIPPED) for s in states
        ):
            return "skip"
        if all(s is not None and s.status in _SUCCEEDED for s in states):
            return "ready"
        return "wait"

    # -- starting a step ---------------------------------------------------------------------
    def _start(self, node: Node) -> bool:
        """Record the node as cached, done (dataset) or submitted; False if no room yet."""
        if node.dataset is not None:
            self._resolve_dataset(node)
            return True
        assert node.step is not None
        options = node.step.options
        if node.name not in self._prepared:  # once: a node without room is tried again later
            inputs, task_inputs = self._inputs(node)
            self._prepared[node.name] = (inputs, task_inputs, self._key(node, inputs))
        inputs, task_inputs, key = self._prepared[node.name]
        record = self._record(
            node,
            StepStatus.PENDING,
            cache_key=key.key,
            key_parts=key.parts,
            upstream=node.upstream,
            inputs=tuple(inputs),
            params=dict(node.params),
            datasets_read=self._datasets_of(node),
            resources=dict(options.resources),
        )
        hit = self._cached(node, key.key)
        if hit is not None:
            self._finish(
                replace(
                    record,
                    status=StepStatus.CACHED,
                    reason=hit[1],
                    outputs=hit[0].outputs,
                    cached_from=hit[0].cached_from or f"{hit[0].pipeline_run_id}/{hit[0].name}",
                    tracking_run_id=hit[0].tracking_run_id,
                    datasets_read=tuple(dict.fromkeys(record.datasets_read + hit[0].datasets_read)),
                    datasets_written=hit[0].datasets_written,
                    model_versions=hit[0].model_versions,
                    start_ms=now_ms(),
                    end_ms=now_ms(),
                )
            )
            return True
        parent = self._tracking_parent()
        task = StepTask(
            pipeline_run_id=self.pipeline_run.run_id,
            node=node.name,
            step=node.step,
            params=dict(node.params),
            inputs=task_inputs,
            settings=self.client.settings,
            tracking=TrackingPlan(
                experiment_id=parent.experiment_id,
                parent_run_id=parent.parent_run_id,
                name=node.name,
                tags={
                    PIPELINE_TAG: self.plan.pipeline,
                    PIPELINE_RUN_TAG: self.pipeline_run.run_id,
                    STEP_TAG: node.name,
                },
                params={k: _text(v) for k, v in node.params.items()},
            ),
            keep_values=self.executor.in_process,
        )
        if not self.executor.has_room(task):
            return False
        previous = self.store.list_step_runs(pipeline=self.plan.pipeline, name=node.name, limit=1)
        reason = self._why_runs(node, key.parts, previous[0] if previous else None)
        record = replace(
            record,
            status=StepStatus.RUNNING,
            reason=reason,
            start_ms=now_ms(),
            attempts=1,
        )
        self._save(record)
        self._submit(node, task, record)
        return True

    def _submit(self, node: Node, task: StepTask, record: StepRun) -> None:
        timeout = node.step.options.timeout_s if node.step is not None else None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            future = self.executor.submit(task)
        except BaseException as exc:  # interrupted in the step (sequential) or not shippable
            self._finish(
                replace(
                    record,
                    status=StepStatus.FAILED,
                    end_ms=now_ms(),
                    error=f"interrupted: {type(exc).__name__}: {exc}",
                )
            )
            raise
        self._running[future] = _Running(node, task, record, deadline)

    def _inputs(self, node: Node) -> tuple[list[StepInput], dict[str, TaskInput]]:
        inputs: list[StepInput] = []
        task_inputs: dict[str, TaskInput] = {}
        for arg, ref in node.inputs.items():
            upstream = self.records[ref.node]
            output = upstream.output(ref.output)
            given = TaskInput(output=output)
            if output.serializer == "dataset":
                given = TaskInput(
                    dataset=self.datasets[ref.node],
                    as_path=bool(self.plan.graph.nodes[ref.node].dataset.as_path),  # type: ignore[union-attr]
                )
                source = f"dataset:{output.type_name}"
            else:
                source = f"step:{ref.node}/{ref.output}"
                in_memory = self.values.get(ref.node, {})
                if ref.output in in_memory:
                    given.value = in_memory[ref.output]
            inputs.append(StepInput(arg, output.digest, source))
            task_inputs[arg] = given
        if node.values:
            from loopml.pipelines.serializers import store_value

            artifacts = self.client.artifact_store()
            for arg, value in node.values.items():
                stored = store_value(artifacts, value, name=arg)
                inputs.append(StepInput(arg, stored.digest, "value"))
                task_inputs[arg] = TaskInput(output=stored, value=value)
        return inputs, task_inputs

    def _key(self, node: Node, inputs: list[StepInput]) -> Any:
        from loopml.pipelines.cache import (
            code_digest,
            compute_key,
            library_versions,
            params_canonical,
        )

        assert node.step is not None
        fn = node.step.fn
        return compute_key(
            code=code_digest(fn),
            params=params_canonical(node.params),
            inputs={i.name: i.digest for i in inputs},
            libraries=library_versions(fn, extra=node.step.options.libraries),
            extra={"outputs": list(node.step.options.outputs)},
        )

    def _cached(self, node: Node, key: str) -> tuple[StepRun, str] | None:
        earlier = self.plan.reuse.get(node.name)
        if earlier is not None and earlier.cache_key == key and self._stored(earlier):
            return (
                earlier,
                f"resumed: step succeeded in run {earlier.pipeline_run_id} with this key",
            )
        assert node.step is not None
        if not (self.cache and node.step.options.cache):
            return None
        found = self.store.list_step_runs(cache_key=key, statuses=list(_SUCCEEDED), limit=1)
        if found and self._stored(found[0]):
            hit = found[0]
            return hit, f"cache hit: same key as step {hit.name!r} of run {hit.pipeline_run_id}"
        return None

    def _stored(self, record: StepRun) -> bool:
        artifacts = self.client.artifact_store()
        return all(artifacts.exists(o.digest) for o in record.outputs)

    def _why_runs(self, node: Node, parts: Mapping[str, Any], previous: StepRun | None) -> str:
        from loopml.pipelines.cache import explain_change

        assert node.step is not None
        if not node.step.options.cache:
            return "runs every time (cache=False)"
        if not self.cache:
            return "cache turned off for this run"
        if previous is None:
            return "first run of this step"
        changes = explain_change(previous.key_parts, parts)
        if changes:
            return "; ".join(changes)
        return f"same key as its last run, which ended {previous.status.value}"

    # -- datasets ----------------------------------------------------------------------------
    def _resolve_dataset(self, node: Node) -> None:
        from loopml.data.versions import find_version

        spec = node.dataset
        assert spec is not None
        found = find_version(self.client, spec.name, spec.version)
        self.datasets[node.name] = found
        label = f"{found.name}@{found.version}"
        now = now_ms()
        self._finish(
            self._record(
                node,
                StepStatus.COMPLETED,
                reason=f"resolved dataset {label}",
                outputs=(
                    StepOutput(
                        "output",
                        found.digest,
                        "dataset",
                        type_name=label,
                        size=found.size_bytes,
                        kind="directory" if found.format == "directory" else "file",
                    ),
                ),
                datasets_read=(label,),
                start_ms=now,
                end_ms=now,
            )
        )

    def _datasets_of(self, node: Node) -> tuple[str, ...]:
        return tuple(
            f"{v.name}@{v.version}" for up, v in self.datasets.items() if up in node.upstream
        )

    # -- finishing ---------------------------------------------------------------------------
    def _wait(self) -> None:
        now = time.monotonic()
        horizons = [r.deadline for r in self._running.values() if r.deadline is not None]
        # a retry already due waits for room, which only a running step can free
        horizons += [at for at, *_ in self._retries if at > now]
        timeout = max(0.0, min(horizons) - now) if horizons else None
        if not self._running:  # only retries waiting for their backoff
            time.sleep(timeout or 0.0)
            return
        done, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            running = self._running.pop(future)
            self._settle(running, future.result())
        now = time.monotonic()
        for future, running in list(self._running.items()):
            if running.deadline is not None and now >= running.deadline:
                del self._running[future]
                self.executor.cancel(future)
                timeout_s = running.node.step.options.timeout_s  # type: ignore[union-attr]
                message = f"TimeoutError: attempt {running.task.attempt} ran over {timeout_s}s"
                if not self.executor.interrupts:
                    message += (
                        " (a thread cannot be stopped: the attempt is abandoned, not retried)"
                    )
                self._settle(
                    running,
                    StepOutcome(
                        error=message,
                        error_summary=message,
                        retryable=self.executor.interrupts,
                        start_ms=running.record.start_ms or now_ms(),
                        end_ms=now_ms(),
                    ),
                )

    def _settle(self, running: _Running, outcome: StepOutcome) -> None:
        node, task, record = running.node, running.task, running.record
        assert node.step is not None
        options = node.step.options
        if not outcome.ok and outcome.retryable and task.attempt <= options.retries:
            delay = options.backoff(task.attempt)
            retry = replace(task, attempt=task.attempt + 1)
            noted = replace(
                record,
                attempts=retry.attempt,
                error=f"attempt {task.attempt} failed: {outcome.error_summary}; retrying in "
                f"{delay:g}s",
            )
            self._save(noted)
            heapq.heappush(
                self._retries, (time.monotonic() + delay, id(retry), node.name, retry, noted)
            )
            return
        logs_digest = ""
        if outcome.logs:
            logs_digest = (
                self.client.artifact_store()
                .put_bytes(outcome.logs.encode(), name="logs.txt")
                .digest
            )
            if outcome.tracking_run_id:
                self.client.store.record_artifact(
                    outcome.tracking_run_id,
                    _logs_ref(logs_digest, len(outcome.logs.encode())),
                )
        if outcome.ok:
            if outcome.values is not None:
                self.values[node.name] = outcome.values
            final = replace(
                record,
                status=StepStatus.COMPLETED,
                outputs=outcome.outputs,
                datasets_read=tuple(dict.fromkeys(record.datasets_read + outcome.datasets_read)),
                datasets_written=outcome.datasets_written,
                model_versions=outcome.model_versions,
                tracking_run_id=outcome.tracking_run_id,
                end_ms=outcome.end_ms or now_ms(),
                error="",
                logs_digest=logs_digest,
            )
        else:
            final = replace(
                record,
                status=StepStatus.FAILED,
                tracking_run_id=outcome.tracking_run_id,
                datasets_read=tuple(dict.fromkeys(record.datasets_read + outcome.datasets_read)),
                datasets_written=outcome.datasets_written,
                end_ms=outcome.end_ms or now_ms(),
                error=outcome.error,
                logs_digest=logs_digest,
            )
        self._finish(final)

    def _start_due_retries(self) -> None:
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now:
            _, _, name, task, record = self._retries[0]
            if not self.executor.has_room(task):
                return
            heapq.heappop(self._retries)
            self._submit(self.plan.graph.nodes[name], task, record)

    def _skip(self, node: Node) -> None:
        failed = [
            up
            for up in node.upstream
            if self.records[up].status in (StepStatus.FAILED, StepStatus.SKIPPED)
        ]
        self._finish(
            self._record(
                node,
                StepStatus.SKIPPED,
                reason=f"not run: {', '.join(failed)} did not succeed",
                upstream=node.upstream,
                params=dict(node.params),
            )
        )

    def _record(self, node: Node, status: StepStatus, **fields: Any) -> StepRun:
        """A step record of ``node`` in this run."""
        return StepRun(
            pipeline_run_id=self.pipeline_run.run_id,
            name=node.name,
            pipeline=self.plan.pipeline,
            step=node.qualified_name,
            status=status,
            **fields,
        )

    def _finish(self, record: StepRun) -> None:
        self.records[record.name] = record
        self._save(record)

    def _save(self, record: StepRun) -> None:
        self.store.save_step_run(record)
        if self.progress is not None:
            self.progress(record)

    def _abandon(self, exc: BaseException) -> None:
        """Interrupted: what was running is recorded as failed, the run as KILLED."""
        for future, running in list(self._running.items()):
            self.executor.cancel(future)
            self._finish(
                replace(
                    running.record,
                    status=StepStatus.FAILED,
                    end_ms=now_ms(),
                    error=f"interrupted: {type(exc).__name__}",
                )
            )
        self._running.clear()
        for *_, record in self._retries:  # waiting for a retry: it will not come
            self._finish(
                replace(
                    record,
                    status=StepStatus.FAILED,
                    end_ms=now_ms(),
                    error=f"{record.error}; interrupted: {type(exc).__name__}",
                )
            )
        self._retries.clear()
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        if self._parent is not None:
            self.client.set_terminated(
                self._parent.parent_run_id, RunStatus.KILLED if interrupted else RunStatus.FAILED
            )
        self.store.update_pipeline_run(
            self.pipeline_run.run_id,
            status=PipelineStatus.KILLED if interrupted else PipelineStatus.FAILED,
            end_ms=now_ms(),
            error=f"{type(exc).__name__}: {exc}",
        )


def _logs_ref(digest: str, size: int) -> Any:
    from loopml.core.entities import ArtifactRef

    return ArtifactRef(path="logs.txt", digest=digest, size=size, created_at=now_ms())


def _text(value: Any) -> str:
    from loopml.pipelines.graph import canonical_json

    return value if isinstance(value, str) else canonical_json(value)
