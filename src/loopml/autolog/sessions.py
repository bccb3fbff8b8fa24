"""One autologged training call: only the outermost, in a run, never breaking the user's code.

A fit that runs inside another patched fit (a Pipeline's steps, a grid search's candidates, a
boosting library's internal ``train``) is not logged: a process-wide depth counter lets only
the outermost call through, whichever thread the nested ones run in. Any error while logging
becomes an :class:`AutologWarning` (or nothing, with ``silent=True``); the user's own
exceptions pass through unchanged, after the run autolog started is marked FAILED.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar

from loopml.autolog import config as _config
from loopml.core.entities import DatasetInput, Metric, RunStatus, now_ms

if TYPE_CHECKING:
    from loopml.tracking.client import Client

__all__ = ["TAG_PREFIX", "AutologWarning", "FitSession", "fit_session"]

TAG_PREFIX: Final = "loopml.autolog."
P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_depth = 0


class AutologWarning(UserWarning):
    """Something could not be logged; the training itself was not affected."""


class FitSession:
    """The run one outermost training call logs into (the active run, or one started for it)."""

    def __init__(
        self, config: _config.AutologConfig, client: Client, run_id: str, owns_run: bool
    ) -> None:
        self.config = config
        self.client = client
        self.run_id = run_id
        self.owns_run = owns_run

    @classmethod
    def open(cls, config: _config.AutologConfig, flavor: str, estimator: str) -> FitSession | None:
        """Use the active run, or start one; None (after a warning) if the store fails."""
        from loopml.tracking import fluent

        try:
            active = fluent.active_run()
            tags = {TAG_PREFIX + "flavor": flavor, TAG_PREFIX + "estimator": estimator}
            if active is None:
                run = fluent.start_run(tags=tags)
                return cls(config, fluent.get_client(), run.run_id, True)
            session = cls(config, fluent.get_client(), active.run_id, False)
            session.client.set_tags(active.run_id, tags)
            return session
        except Exception as exc:
            _warn(config, f"could not start a run for {estimator}: {exc}")
            return None

    def safely(self, what: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R | None:
        """Call ``fn``; an exception becomes a warning naming ``what`` failed."""
        try:
            if self.config.silent:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return fn(*args, **kwargs)
            return fn(*args, **kwargs)
        except Exception as exc:
            _warn(self.config, f"could not log {what}: {type(exc).__name__}: {exc}")
            return None

    def end(self, exc: BaseException | None) -> None:
        """End the run autolog started: FINISHED, or FAILED/KILLED after an exception."""
        if not self.owns_run:
            return
        from loopml.tracking import fluent

        if exc is None:
            status = RunStatus.FINISHED
        elif isinstance(exc, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        self.safely("the end of the run", fluent.end_run, status, run_id=self.run_id)

    # -- what integrations log -----------------------------------------------------------
    def log_params(self, params: Mapping[str, str]) -> None:
        if params:
            self.client.log_batch(self.run_id, params=params)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        if metrics:
            ts = now_ms()
            self.log_metric_points([Metric(k, float(v), step, ts) for k, v in metrics.items()])

    def log_metric_points(self, points: Sequence[Metric]) -> None:
        if points:
            self.client.log_batch(self.run_id, metrics=points)

    def log_dataset(self, name: str, digest: str, source_type: str) -> None:
        self.client.log_inputs(
            self.run_id,
            [
                DatasetInput(
                    name, digest, source="autolog", source_type=source_type, context="training"
                )
            ],
        )


def _warn(config: _config.AutologConfig, message: str) -> None:
    if not config.silent:
        warnings.warn(f"loopml autolog: {message}", AutologWarning, stacklevel=4)


@contextmanager
def fit_session(flavor: str, estimator: str) -> Iterator[FitSession | None]:
    """A session for the outermost training call while autologging is on, else None.

    The body runs the user's training; if it raises, the run autolog started is marked FAILED
    (KILLED for Ctrl-C) and the exception propagates unchanged.
    """
    global _depth
    config = _config.current()
    if config is None:
        yield None
        return
    with _lock:
        outermost = _depth == 0
        _depth += 1
    try:
        if not outermost:
            yield None
            return
        session = FitSession.open(config, flavor, estimator)
        try:
            yield session
        except BaseException as exc:
            if session is not None:
                session.end(exc)
            raise
        if session is not None:
            session.end(None)
    finally:
        with _lock:
            _depth -= 1
