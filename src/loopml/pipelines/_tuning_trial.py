"""One trial of a search: the :class:`Trial` an objective sees, and running it into its run."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import TYPE_CHECKING, Any, TypeVar

from loopml.core import validation as v
from loopml.core.entities import Metric, Run, RunStatus
from loopml.errors import InvalidArgument
from loopml.pipelines._tuning_study import StudyPort

if TYPE_CHECKING:
    from loopml.settings import Settings
    from loopml.tracking.client import Client

NUMBER_TAG = "loopml.trial.number"
STATE_TAG = "loopml.trial.state"
ERROR_TAG = "loopml.trial.error"
OBJECTIVE = "objective"

_Choice = TypeVar("_Choice", None, bool, int, float, str)


class Trial:
    """One trial of :func:`~loopml.pipelines.tuning.search`.

    Suggest hyper-parameters with ``suggest_*``, report intermediate values with
    :meth:`report` (each is also logged as metric ``objective`` at its step) and ask
    :meth:`should_prune` whether to stop (then ``raise optuna.TrialPruned()``). The trial's
    tracking run is ``run_id``; log more to it with ``trial.client``.
    """

    def __init__(self, port: StudyPort, number: int, run_id: str, client: Client) -> None:
        self._port = port
        self._params: dict[str, Any] = {}
        self._last_step: int | None = None
        self.number = number
        self.run_id = run_id
        self.client = client

    @property
    def params(self) -> dict[str, Any]:
        """The hyper-parameters suggested so far."""
        return dict(self._params)

    @property
    def last_step(self) -> int | None:
        """The highest step reported so far (None before the first report)."""
        return self._last_step

    def _suggest(self, method: str, name: str, *args: Any, **kwargs: Any) -> Any:
        v.check_key(name, "hyper-parameter name")
        value = self._port.suggest(self.number, method, name, args, kwargs)
        self._params[name] = value
        return value

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return float(self._suggest("suggest_float", name, low, high, step=step, log=log))

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        return int(self._suggest("suggest_int", name, low, high, step=step, log=log))

    def suggest_categorical(self, name: str, choices: Sequence[_Choice]) -> _Choice:
        value: _Choice = self._suggest("suggest_categorical", name, list(choices))
        return value

    def report(self, value: float, step: int) -> None:
        """Report the objective's value at ``step`` (an epoch, a number of trees ...)."""
        value = v.check_metric_value(OBJECTIVE, value)
        step = v.check_step(OBJECTIVE, step)
        self._port.report(self.number, value, step)
        self.client.log_metric(self.run_id, OBJECTIVE, value, step=step)
        self._last_step = step if self._last_step is None else max(self._last_step, step)

    def should_prune(self) -> bool:
        """Whether the pruner, seeing every trial's reports, would stop this trial now."""
        return self._port.should_prune(self.number)

    def __repr__(self) -> str:
        return f"<Trial {self.number} run={self.run_id!r} params={self._params!r}>"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a trial ended; ``model`` only for a completed trial whose objective returned one."""

    number: int
    state: str  # COMPLETE, PRUNED or FAIL
    value: float | None
    run_id: str | None  # None when the trial failed before its run was created
    params: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    error: str | None = None


Objective = Callable[[Trial], Any]


def run_trial(
    port: StudyPort,
    objective: Objective,
    client: Client,
    number: int,
    *,
    parent_run_id: str,
    experiment_id: str,
) -> Outcome:
    """Run the objective as trial ``number`` in a new child run of ``parent_run_id``.

    An exception in the objective fails the trial (not the search); ``optuna.TrialPruned``
    prunes it. An interrupt (``KeyboardInterrupt``, ``SystemExit``) at any point after the run
    was created ends the run KILLED and propagates.
    """
    run = client.create_run(
        experiment_id,
        name=f"trial-{number}",
        parent_run_id=parent_run_id,
        tags={NUMBER_TAG: str(number), STATE_TAG: "RUNNING"},
    )
    try:
        port.attach_run(number, run.run_id)
        return _run_in(port, objective, client, number, run.run_id)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # an interrupt: nothing else would end the run
            error = f"interrupted: {type(exc).__name__}"
            finish_failed(port, client, number, error, status=RunStatus.KILLED, run_id=run.run_id)
        raise


def _run_in(
    port: StudyPort, objective: Objective, client: Client, number: int, run_id: str
) -> Outcome:
    """Call the objective as trial ``number``, tell the study, and record the run's end."""
    from optuna import TrialPruned

    trial = Trial(port, number, run_id, client)
    value: float | None = None
    model: Any = None
    error: str | None = None
    try:
        value, model = _split(objective(trial))
        state = "COMPLETE"
    except TrialPruned:
        state = "PRUNED"
    except Exception as exc:
        state, error = "FAIL", f"{type(exc).__name__}: {exc}"
    state, value = port.tell(number, value, state)
    tags = {STATE_TAG: state}
    if error is not None:
        tags[ERROR_TAG] = error[: v.MAX_TAG_VALUE_LENGTH]
    metrics = []
    if state == "COMPLETE" and value is not None:
        step = 0 if trial.last_step is None else trial.last_step + 1
        metrics.append(Metric(OBJECTIVE, value, step, time.time_ns() // 1_000_000))
    client.log_batch(run_id, metrics=metrics, params=trial.params, tags=tags)
    client.set_terminated(run_id, RunStatus.FAILED if state == "FAIL" else RunStatus.FINISHED)
    return Outcome(
        number,
        state,
        value,
        run_id,
        params=trial.params,
        model=model if state == "COMPLETE" else None,
        error=error,
    )


def finish_failed(
    port: StudyPort,
    client: Client,
    number: int,
    error: str,
    *,
    status: RunStatus = RunStatus.FAILED,
    run_id: str | None = None,
) -> Outcome:
    """End a trial that could not run to its end (its worker died, its logging failed, it was
    interrupted): the study is told it failed and its run, ``run_id`` or the one the study
    knows (none when the trial stopped before making it), ends ``status``."""
    port.tell(number, None, "FAIL")
    run_id = run_id or port.run_of(number)
    if run_id is not None:
        _end_failed(client, run_id, error, status)
    return Outcome(number, "FAIL", None, run_id, error=error)


def end_orphaned_trials(client: Client, parent: Run, error: str) -> int:
    """End KILLED, tagged with ``error``, the trial runs under ``parent`` still RUNNING once
    every trial task is gone: those of tasks stopped after creating their run but before the
    study recorded it. Other runs under ``parent`` (the caller's own) are left alone. Returns
    how many."""
    query = f"attributes.parent_run_id = '{parent.run_id}' AND attributes.status = 'RUNNING'"
    running = list(client.iter_runs([parent.experiment_id], filter=query))  # then change them
    orphans = [run for run in running if NUMBER_TAG in run.tags]
    for run in orphans:
        _end_failed(client, run.run_id, error, RunStatus.KILLED)
    return len(orphans)


def _end_failed(client: Client, run_id: str, error: str, status: RunStatus) -> None:
    client.set_tags(run_id, {STATE_TAG: "FAIL", ERROR_TAG: error[: v.MAX_TAG_VALUE_LENGTH]})
    client.set_terminated(run_id, status)


def _split(result: Any) -> tuple[float, Any]:
    """The objective's value (and model, if it returned a pair)."""
    value, model = result if isinstance(result, tuple) and len(result) == 2 else (result, None)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidArgument(
            f"the objective returned {value!r} ({type(value).__name__}) as the trial's value: "
            "return a number, or a (number, model) pair"
        )
    number = float(value)
    if math.isnan(number):
        raise InvalidArgument(
            "the objective returned NaN as the trial's value: return a number, or raise "
            "to fail the trial"
        )
    return number, model


def run_trial_task(
    actor: Any,
    objective: Objective,
    settings: Settings,
    number: int,
    parent_run_id: str,
    experiment_id: str,
) -> Outcome:
    """A trial as a Ray task: its own client on the shared stores, the study on the actor."""
    from loopml.pipelines._tuning_study import ActorPort
    from loopml.tracking.client import Client

    with Client(settings=settings) as client:
        return run_trial(
            ActorPort(actor),
            objective,
            client,
            number,
            parent_run_id=parent_run_id,
            experiment_id=experiment_id,
        )
