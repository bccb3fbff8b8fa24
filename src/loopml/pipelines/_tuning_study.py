"""The Optuna study of a search, held in one place and reached through a small port.

Every trial asks, suggests, reports, asks whether to prune and tells through the same
:class:`StudyHost`, so the sampler and the pruner always see every trial's values. Local threads
call the host directly (a lock serialises them); on Ray the host is an actor and each trial task
reaches it through :class:`ActorPort`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

RUN_ATTR = "loopml.run_id"
SUGGEST_METHODS = frozenset({"suggest_float", "suggest_int", "suggest_categorical"})


class StudyPort(Protocol):
    """What a running trial needs from the study."""

    def ask(self) -> int: ...

    def suggest(
        self, number: int, method: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Any: ...

    def attach_run(self, number: int, run_id: str) -> None: ...

    def run_of(self, number: int) -> str | None: ...

    def report(self, number: int, value: float, step: int) -> None: ...

    def should_prune(self, number: int) -> bool: ...

    def tell(self, number: int, value: float | None, state: str) -> tuple[str, float | None]: ...


@dataclass(frozen=True, slots=True)
class StudyConfig:
    name: str
    direction: str  # maximize or minimize
    sampler: Any
    pruner: Any


class StudyHost:
    """An in-memory Optuna study driven through ask and tell, safe to call from many threads."""

    def __init__(self, config: StudyConfig) -> None:
        import optuna
        from optuna.study import StudyDirection

        self._study = optuna.create_study(
            study_name=config.name,
            direction=StudyDirection[config.direction.upper()],
            sampler=config.sampler,
            pruner=config.pruner,
        )
        self._trials: dict[int, Any] = {}  # number -> optuna.Trial, while it runs
        self._runs: dict[int, str] = {}  # number -> tracking run id
        self._lock = threading.Lock()

    def ask(self) -> int:
        with self._lock:
            trial = self._study.ask()
            self._trials[trial.number] = trial
            return int(trial.number)

    def suggest(
        self, number: int, method: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Any:
        if method not in SUGGEST_METHODS:
            raise ValueError(f"unknown suggest method {method!r}: {sorted(SUGGEST_METHODS)}")
        with self._lock:
            return getattr(self._trials[number], method)(name, *args, **kwargs)

    def attach_run(self, number: int, run_id: str) -> None:
        """Record the trial's tracking run (also as the user attribute ``loopml.run_id``)."""
        with self._lock:
            self._runs[number] = run_id
            self._trials[number].set_user_attr(RUN_ATTR, run_id)

    def run_of(self, number: int) -> str | None:
        return self._runs.get(number)

    def report(self, number: int, value: float, step: int) -> None:
        with self._lock:
            self._trials[number].report(value, step)

    def should_prune(self, number: int) -> bool:
        with self._lock:
            return bool(self._trials[number].should_prune())

    def tell(self, number: int, value: float | None, state: str) -> tuple[str, float | None]:
        """Finish the trial (a second tell is ignored); returns its final state and value."""
        from optuna.trial import TrialState

        with self._lock:
            trial = self._trials.pop(number, number)
            if state == "COMPLETE":
                frozen = self._study.tell(trial, value, skip_if_finished=True)
            else:
                frozen = self._study.tell(trial, state=TrialState[state], skip_if_finished=True)
            return frozen.state.name, frozen.value


class ActorPort:
    """A :class:`StudyPort` over a Ray actor running a :class:`StudyHost`."""

    def __init__(self, actor: Any) -> None:
        self._actor = actor

    def _call(self, method: str, *args: Any) -> Any:
        import ray

        return ray.get(getattr(self._actor, method).remote(*args))

    def ask(self) -> int:
        return int(self._call("ask"))

    def suggest(
        self, number: int, method: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Any:
        return self._call("suggest", number, method, name, args, dict(kwargs))

    def attach_run(self, number: int, run_id: str) -> None:
        self._call("attach_run", number, run_id)

    def run_of(self, number: int) -> str | None:
        found = self._call("run_of", number)
        return None if found is None else str(found)

    def report(self, number: int, value: float, step: int) -> None:
        self._call("report", number, value, step)

    def should_prune(self, number: int) -> bool:
        return bool(self._call("should_prune", number))

    def tell(self, number: int, value: float | None, state: str) -> tuple[str, float | None]:
        final, told = self._call("tell", number, value, state)
        return str(final), told
