"""Hyper-parameter search: an Optuna study whose trials are tracked runs.

    def objective(trial: Trial) -> tuple[float, Any]:
        C = trial.suggest_float("C", 1e-3, 1e2, log=True)
        model = LogisticRegression(C=C).fit(X_train, y_train)
        return model.score(X_test, y_test), model

    result = search(objective, n_trials=20, experiment="iris", register_as="iris")

The study lives in a parent run; each trial is a child run holding its params, the metric
``objective`` (every :meth:`Trial.report` at its step, the final value after them) and the tags
``loopml.trial.number`` and ``loopml.trial.state`` (COMPLETE, PRUNED or FAIL). A trial that
raises ends FAILED and the search goes on; a pruned trial ends FINISHED. The parent gets the
metrics ``best_value`` (after each trial) and ``n_trials_complete``/``pruned``/``failed``, the
params ``best.<name>`` and the tag ``loopml.search.best_run_id``. When the objective returns
``(value, model)``, only the best model so far is kept in memory; at the end it is logged as
artifact ``model`` of the best trial's run (and registered with ``register_as``).

Executors: ``local`` runs ``n_jobs`` trials at once in threads; ``ray`` runs each trial as a
Ray task, at most ``n_jobs`` at once. Either way there is one study, held by the driver (on
Ray by an actor): every suggestion, report, pruning decision and result goes through it, so
the sampler and the pruner always see every trial's values, and no shared file is needed (a
journal file would tie the workers to the driver's disk and be replayed on each access).

An interrupt of the driver (Ctrl-C) stops the search: on Ray every running trial's task is
cancelled (its worker process killed) and its run ends KILLED; local threads cannot be
stopped, so their trials run to their end and end their own runs, and trials not started yet
never start. A parent run the search made ends KILLED (FAILED when an error stopped it).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection, Hashable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

from loopml.core.entities import Metric, Run, RunStatus, now_ms
from loopml.errors import InvalidArgument, InvalidState
from loopml.pipelines._tuning_study import StudyConfig, StudyHost, StudyPort
from loopml.pipelines._tuning_trial import (
    Objective,
    Outcome,
    Trial,
    end_orphaned_trials,
    finish_failed,
    run_trial,
)

if TYPE_CHECKING:
    from loopml.tracking.client import Client

__all__ = ["SearchResult", "Trial", "TrialSummary", "search"]

log = logging.getLogger("loopml.pipelines.tuning")

DIRECTIONS = ("maximize", "minimize")
EXECUTORS = ("local", "ray")
BEST_RUN_TAG = "loopml.search.best_run_id"

_H = TypeVar("_H", bound=Hashable)
CANCEL_WAIT_S = 10.0  # how long an interrupted Ray search waits for its cancelled tasks


class TrialSummary(NamedTuple):
    """One trial of a search: ``(number, state, value, run_id)``."""

    number: int
    state: str  # COMPLETE, PRUNED or FAIL
    value: float | None  # a pruned trial's is its last reported value
    run_id: str | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What :func:`search` found."""

    best_value: float
    best_params: Mapping[str, Any]
    best_trial_run_id: str
    parent_run_id: str
    trials: list[TrialSummary]  # by trial number
    model_uri: str | None = None  # runs:/<best trial run>/model, when a model was returned
    model_version: int | None = None  # its registered version, with register_as


def search(
    objective: Callable[[Trial], float | tuple[float, Any]],
    *,
    n_trials: int,
    direction: str = "maximize",
    experiment: str | None = None,
    name: str | None = None,
    parent_run_id: str | None = None,
    n_jobs: int = 1,
    executor: str = "local",
    sampler: Any = None,
    pruner: Any = None,
    seed: int | None = None,
    timeout_s: float | None = None,
    register_as: str | None = None,
    client: Client | None = None,
) -> SearchResult:
    """Run ``n_trials`` trials of ``objective`` and return the best.

    The parent run is ``parent_run_id``, else the active fluent run (when ``client`` is the
    fluent API's), else a new run named ``name`` (default ``search``) in ``experiment``
    (default: the configured one), ended when the search ends. ``sampler`` defaults to
    ``TPESampler(seed=seed)`` and ``pruner`` to ``MedianPruner(n_startup_trials=3)``, which
    only acts on trials that report. After ``timeout_s`` no new trial starts (running ones
    finish; the first always runs). Raises :class:`~loopml.errors.InvalidState` when no trial
    completed.
    """
    direction = _check(objective, n_trials, direction, n_jobs, executor, timeout_s)
    import optuna

    from loopml.tracking import fluent

    client = client or fluent.get_client()
    parent, owned = _parent_run(client, parent_run_id, experiment, name)
    study = StudyConfig(
        name=f"{name or 'search'}-{parent.run_id}",
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed) if sampler is None else sampler,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3) if pruner is None else pruner,
    )
    client.set_tags(
        parent.run_id, {"loopml.search.direction": direction, "loopml.search.executor": executor}
    )
    collector = _Collector(client, parent.run_id, direction)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        backend: _Backend[Any]
        if executor == "ray":
            backend = _RayBackend(study, objective, client, parent)
        else:
            backend = _LocalBackend(StudyHost(study), objective, client, parent, n_jobs)
        _drive(backend, client, n_trials, n_jobs, deadline, collector.add)
        result = collector.finish(register_as)
    except BaseException as exc:
        if owned:
            client.set_terminated(parent.run_id, _end_status(exc))
        raise
    if owned:
        client.set_terminated(parent.run_id, RunStatus.FINISHED)
    return result


def _check(
    objective: Any,
    n_trials: int,
    direction: str,
    n_jobs: int,
    executor: str,
    timeout_s: float | None,
) -> str:
    if not callable(objective):
        raise InvalidArgument(
            f"objective {objective!r} is not callable: give a function taking a Trial and "
            "returning a number or a (number, model) pair"
        )
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise InvalidArgument(f"invalid n_trials {n_trials!r}: must be a whole number >= 1")
    if not isinstance(direction, str) or direction.lower() not in DIRECTIONS:
        raise InvalidArgument(
            f"invalid direction {direction!r}: must be one of {', '.join(DIRECTIONS)}"
        )
    if executor not in EXECUTORS:
        raise InvalidArgument(
            f"invalid executor {executor!r}: must be one of {', '.join(EXECUTORS)}"
        )
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise InvalidArgument(
            f"invalid n_jobs {n_jobs!r}: must be a whole number >= 1 (trials run at once)"
        )
    if timeout_s is not None and not timeout_s > 0:
        raise InvalidArgument(f"invalid timeout_s {timeout_s!r}: must be > 0 seconds, or None")
    return direction.lower()


def _parent_run(
    client: Client, parent_run_id: str | None, experiment: str | None, name: str | None
) -> tuple[Run, bool]:
    """The run holding the study, and whether this search created it (and so ends it)."""
    from loopml.tracking import fluent

    if parent_run_id is not None:
        return client.get_run(parent_run_id), False
    active = fluent.active_run()
    if active is not None and client is fluent.get_client():
        return client.get_run(active.run_id), False
    found = client.set_experiment(experiment or client.settings.experiment)
    return client.create_run(found.experiment_id, name=name or "search"), True


def _end_status(exc: BaseException) -> RunStatus:
    return RunStatus.FAILED if isinstance(exc, Exception) else RunStatus.KILLED


# -- running trials --------------------------------------------------------------------------
class _Backend(Protocol[_H]):
    """Where trials run: ``launch`` starts one, ``wait`` returns at least one finished;
    ``close`` after the last, or ``abort`` with the trials still pending (handle -> number)
    when the search is interrupted."""

    port: StudyPort

    def launch(self, number: int) -> _H: ...

    def wait(self, pending: Collection[_H]) -> list[_H]: ...

    def outcome(self, handle: _H) -> Outcome: ...

    def close(self) -> None: ...

    def abort(self, pending: Mapping[_H, int], error: str) -> None: ...


def _drive(
    backend: _Backend[_H],
    client: Client,
    n_trials: int,
    n_jobs: int,
    deadline: float | None,
    on_outcome: Callable[[Outcome], None],
) -> None:
    """Keep ``n_jobs`` trials running until ``n_trials`` have started, or time is up (the first
    trial always starts)."""
    pending: dict[_H, int] = {}
    launched = 0
    try:
        while True:
            while (
                launched < n_trials
                and len(pending) < n_jobs
                and (launched == 0 or deadline is None or time.monotonic() < deadline)
            ):
                number = backend.port.ask()
                pending[backend.launch(number)] = number
                launched += 1
            if not pending:
                break
            for handle in backend.wait(list(pending)):
                number = pending[handle]
                try:
                    outcome = backend.outcome(handle)
                except Exception as exc:  # the worker died, or logging the trial failed
                    error = f"{type(exc).__name__}: {exc}"
                    outcome = finish_failed(backend.port, client, number, error)
                del pending[handle]  # only now: its run has ended
                on_outcome(outcome)
    except BaseException as exc:
        backend.abort(pending, f"interrupted: {type(exc).__name__}")
        raise
    backend.close()


class _LocalBackend:
    """Trials in this process: inline for one job, else in a pool of ``n_jobs`` threads."""

    def __init__(
        self, host: StudyHost, objective: Objective, client: Client, parent: Run, n_jobs: int
    ) -> None:
        self.port: StudyPort = host
        self._objective = objective
        self._client = client
        self._parent = parent
        self._pool = (
            ThreadPoolExecutor(n_jobs, thread_name_prefix="loopml-search") if n_jobs > 1 else None
        )

    def _run(self, number: int) -> Outcome:
        return run_trial(
            self.port,
            self._objective,
            self._client,
            number,
            parent_run_id=self._parent.run_id,
            experiment_id=self._parent.experiment_id,
        )

    def launch(self, number: int) -> Future[Outcome]:
        if self._pool is not None:
            return self._pool.submit(self._run, number)
        done: Future[Outcome] = Future()
        try:
            done.set_result(self._run(number))
        except Exception as exc:
            done.set_exception(exc)
        return done

    def wait(self, pending: Collection[Future[Outcome]]) -> list[Future[Outcome]]:
        return list(wait(pending, return_when=FIRST_COMPLETED).done)

    def outcome(self, handle: Future[Outcome]) -> Outcome:
        return handle.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def abort(self, pending: Mapping[Future[Outcome], int], error: str) -> None:
        """Trials not started yet never start; a thread cannot be stopped, so running trials
        go on to their end (in a process that lives on) and end their own runs. With one
        job the trial ran inline, where the interrupt itself ended its run KILLED."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class _RayBackend:
    """Each trial a Ray task on the cluster of ``settings.ray_address``; the study an actor."""

    def __init__(
        self, study: StudyConfig, objective: Objective, client: Client, parent: Run
    ) -> None:
        from loopml.pipelines._tuning_study import ActorPort
        from loopml.pipelines._tuning_trial import run_trial_task
        from loopml.pipelines.executors.ray import ensure_ray, worker_settings

        self._settings = worker_settings(client.settings)
        self._ray = ray = ensure_ray(client.settings.ray_address)
        self._actor = ray.remote(num_cpus=0)(StudyHost).remote(study)
        self.port: StudyPort = ActorPort(self._actor)
        self._task = ray.remote(num_cpus=1, max_retries=0)(run_trial_task)
        self._objective = ray.put(objective)
        self._client = client
        self._parent = parent

    def launch(self, number: int) -> Any:
        return self._task.remote(
            self._actor,
            self._objective,
            self._settings,
            number,
            self._parent.run_id,
            self._parent.experiment_id,
        )

    def wait(self, pending: Collection[Any]) -> list[Any]:
        done, _ = self._ray.wait(list(pending), num_returns=1)
        return list(done)

    def outcome(self, handle: Any) -> Outcome:
        result: Outcome = self._ray.get(handle)
        return result

    def close(self) -> None:
        self._ray.kill(self._actor)

    def abort(self, pending: Mapping[Any, int], error: str) -> None:
        """Cancel every pending trial's task (its worker process is killed) and end the run of
        each that did not end on its own KILLED, tagged with ``error`` (also a run the study
        never learnt of: its task stopped right after making it), then kill the study actor
        (which knows the trials' runs, so it goes last)."""
        ray = self._ray
        try:
            for ref in pending:
                with contextlib.suppress(Exception):  # already finished: nothing to stop
                    ray.cancel(ref, force=True)
            returned = self._returned(list(pending))
            for ref, number in pending.items():
                if ref in returned:
                    continue
                try:
                    finish_failed(self.port, self._client, number, error, status=RunStatus.KILLED)
                except Exception as exc:  # the interrupt goes on; the run stays as it is
                    log.warning("could not end the run of trial %d KILLED: %s", number, exc)
            try:
                end_orphaned_trials(self._client, self._parent, error)
            except Exception as exc:
                log.warning("could not end the runs of stopped trials KILLED: %s", exc)
        finally:
            ray.kill(self._actor)

    def _returned(self, refs: list[Any]) -> set[Any]:
        """Those of the cancelled ``refs`` whose task had returned, having ended its run."""
        if not refs:
            return set()
        settled, _ = self._ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S)
        returned = set()
        for ref in settled:
            try:
                self._ray.get(ref)
            except Exception:  # cancelled, or its worker died
                continue
            returned.add(ref)
        return returned


# -- results ---------------------------------------------------------------------------------
class _Collector:
    """Gathers trial outcomes, keeping the best (and only its model) and the parent's metrics."""

    def __init__(self, client: Client, parent_run_id: str, direction: str) -> None:
        self._client = client
        self._parent_run_id = parent_run_id
        self._sign = 1.0 if direction == "maximize" else -1.0
        self._trials: list[TrialSummary] = []
        self._errors: list[str] = []
        self.best: Outcome | None = None

    def add(self, outcome: Outcome) -> None:
        self._trials.append(
            TrialSummary(outcome.number, outcome.state, outcome.value, outcome.run_id)
        )
        if outcome.error is not None:
            self._errors.append(f"trial {outcome.number}: {outcome.error}")
        best = self.best
        if (
            outcome.state == "COMPLETE"
            and outcome.value is not None
            and (best is None or self._better(outcome.value, best.value))
        ):
            self.best = best = outcome  # the previous best's model is dropped here
        if best is not None and best.value is not None:
            self._client.log_metric(
                self._parent_run_id, "best_value", best.value, step=len(self._trials)
            )
        log.info(
            "trial %d %s (value %s, run %s); best so far %s",
            outcome.number,
            outcome.state,
            outcome.value,
            outcome.run_id,
            None if best is None else f"{best.value} (trial {best.number})",
        )

    def _better(self, value: float, than: float | None) -> bool:
        return than is None or self._sign * value > self._sign * than

    def _count(self, state: str) -> float:
        return float(sum(1 for t in self._trials if t.state == state))

    def finish(self, register_as: str | None) -> SearchResult:
        """Record the summary on the parent run and log the best model; the result."""
        from loopml.models.api import log_model

        client, parent = self._client, self._parent_run_id
        counts = {
            f"n_trials_{word}": self._count(state)
            for word, state in (("complete", "COMPLETE"), ("pruned", "PRUNED"), ("failed", "FAIL"))
        }
        stamp = now_ms()
        client.log_batch(parent, metrics=[Metric(k, n, 0, stamp) for k, n in counts.items()])
        best = self.best
        if best is None or best.value is None or best.run_id is None:
            first = f"; first error: {self._errors[0]}" if self._errors else ""
            raise InvalidState(
                f"no trial of the search in run {parent!r} completed: "
                f"{int(counts['n_trials_failed'])} failed, "
                f"{int(counts['n_trials_pruned'])} pruned{first}",
                run_id=parent,
            )
        client.log_batch(
            parent,
            params={f"best.{k}": value for k, value in best.params.items()},
            tags={BEST_RUN_TAG: best.run_id},
        )
        client.flush()
        model_uri = model_version = None
        if best.model is not None:
            logged = log_model(
                best.model,
                "model",
                registered_model_name=register_as,
                run_id=best.run_id,
                client=client,
            )
            model_uri, model_version = logged.uri, logged.version
        elif register_as is not None:
            log.warning(
                "nothing registered as %r: the objective returned no model; return "
                "(value, model) to have the best trial's model logged and registered",
                register_as,
            )
        return SearchResult(
            best_value=best.value,
            best_params=dict(best.params),
            best_trial_run_id=best.run_id,
            parent_run_id=parent,
            trials=sorted(self._trials),
            model_uri=model_uri,
            model_version=model_version,
        )
