"""The fluent tracking API: ``with loopml.start_run(): loopml.log_metric(...)``.

One :class:`Client` per process and one stack of active runs (shared by all threads, so a
worker thread logs into the run its main thread started). :func:`use_run` overrides both for
the current thread or task only: a pipeline step running in a worker thread logs into its own
run while other steps log into theirs. Runs end FINISHED when their block
ends, FAILED on an exception, KILLED on Ctrl-C or SIGTERM; runs still open at interpreter
exit are ended there, after a last flush.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from loopml.core.datasets import DatasetVersion
from loopml.core.entities import ArtifactRef, DatasetInput, Metric, Run, RunStatus
from loopml.errors import InvalidArgument, InvalidState
from loopml.tracking.client import Client

_lock = threading.RLock()
_client: Client | None = None
_stack: list[ActiveRun] = []
_hooks_installed = False


class _Scope:
    """What :func:`use_run` makes active in one thread: a client, a run (possibly created on
    first use), and the runs nested in it there."""

    def __init__(self, client: Client, run: str | Callable[[], str]) -> None:
        self.client = client
        self._run = run
        self.stack: list[ActiveRun] = []

    @property
    def run_id(self) -> str:
        if callable(self._run):
            self._run = self._run()
        return self._run


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
    "loopml_active_run", default=None
)


def _current_stack() -> list[ActiveRun]:
    scope = _scope.get()
    return _stack if scope is None else scope.stack


class ActiveRun:
    """A run started by :func:`start_run`; use it as a context manager."""

    def __init__(self, run: Run) -> None:
        self.info = run

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def experiment_id(self) -> str:
        return self.info.experiment_id

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        end_run(_status_for(exc), run_id=self.run_id)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.info.name!r} ({self.run_id})>"


def _status_for(exc: BaseException | None) -> RunStatus:
    if exc is None:
        return RunStatus.FINISHED
    if isinstance(exc, KeyboardInterrupt):
        return RunStatus.KILLED
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return RunStatus.FINISHED
    return RunStatus.FAILED


@contextlib.contextmanager
def use_run(client: Client, run_id: str | Callable[[], str]) -> Iterator[None]:
    """Inside the block, the fluent API of this thread (or task) logs into ``run_id`` with
    ``client``; other threads keep theirs. Nothing is started or ended. ``run_id`` may be a
    function returning the id, called on first use (a run made only when something logs)."""
    scope = _Scope(client, run_id)
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)
        for left in reversed(scope.stack):  # nested runs the block started and did not end
            client.set_terminated(left.run_id, RunStatus.FINISHED)


def get_client() -> Client:
    """The process-wide client the fluent API uses (built from ``LOOPML_*`` settings)."""
    global _client
    scope = _scope.get()
    if scope is not None:
        return scope.client
    if _client is None:
        with _lock:
            if _client is None:
                _client = Client()
    return _client


def set_tracking(store_uri: str | None = None, *, artifact_uri: str | None = None) -> Client:
    """Point the fluent API at another store (ends nothing; call between runs)."""
    global _client
    with _lock:
        if _stack:
            raise InvalidState(
                f"run {_stack[-1].run_id!r} is active: end it before switching stores"
            )
        if _client is not None:
            _client.close()
        _client = Client(store_uri, artifact_uri=artifact_uri)
        return _client


def start_run(
    run_id: str | None = None,
    *,
    experiment: str | None = None,
    experiment_id: str | None = None,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
    notes: str | None = None,
) -> ActiveRun:
    """Start (or, given ``run_id``, resume) a run and make it the active one.

    ``experiment`` names an experiment (created if missing); default: ``LOOPML_EXPERIMENT``.
    With ``nested=True`` the new run is a child of the active run.
    """
    client = get_client()
    scope = _scope.get()
    stack = _current_stack()
    with _lock:
        if scope is not None and not nested:
            raise InvalidState(
                f"run {scope.run_id!r} is active here (a pipeline step's run): pass nested=True "
                "to start a child run"
            )
        if stack and not nested:
            raise InvalidState(
                f"run {stack[-1].run_id!r} is already active: end it first, or pass "
                "nested=True to start a child run"
            )
        _install_hooks()
        if run_id is not None:
            run = client.store.update_run(run_id, status=RunStatus.RUNNING)
        else:
            if experiment is not None and experiment_id is not None:
                raise InvalidArgument(
                    "pass experiment (a name) or experiment_id, not both: "
                    f"got {experiment!r} and {experiment_id!r}"
                )
            if experiment_id is None:
                experiment_id = client.set_experiment(
                    experiment or client.settings.experiment
                ).experiment_id
            run = client.create_run(
                experiment_id,
                name=name,
                tags={k: str(val) for k, val in (tags or {}).items()},
                parent_run_id=(
                    stack[-1].run_id if stack else (scope.run_id if scope is not None else None)
                ),
            )
        if notes is not None:
            run = client.set_notes(run.run_id, notes)
        active = ActiveRun(run)
        stack.append(active)
        return active


def end_run(status: RunStatus | str = RunStatus.FINISHED, *, run_id: str | None = None) -> None:
    """End the active run (or the given one, and every run nested in it)."""
    stack = _current_stack()
    with _lock:
        if not stack:
            return
        target = run_id or stack[-1].run_id
        ids = [a.run_id for a in stack]
        if target not in ids:
            return
        depth = ids.index(target)
        ending = stack[depth:]
        del stack[depth:]
    client = get_client()
    for active in reversed(ending):
        client.set_terminated(active.run_id, status)


def active_run() -> ActiveRun | None:
    scope = _scope.get()
    if scope is not None and not scope.stack:
        return ActiveRun(scope.client.get_run(scope.run_id))
    stack = _current_stack()
    return stack[-1] if stack else None


def _run_id() -> str:
    scope = _scope.get()
    if scope is not None:
        return scope.stack[-1].run_id if scope.stack else scope.run_id
    if not _stack:
        start_run()
    return _stack[-1].run_id


# -- logging ---------------------------------------------------------------------------------
def log_metric(key: str, value: float, step: int = 0, *, timestamp: int | None = None) -> None:
    """Log one metric point to the active run (buffered; written within a second)."""
    # the hot path (a plain active run) skips _run_id()
    run_id = _stack[-1].run_id if _stack and _scope.get() is None else _run_id()
    get_client().log_metric(run_id, key, value, step=step, timestamp=timestamp)


def log_metrics(
    metrics: Mapping[str, float], step: int = 0, *, timestamp: int | None = None
) -> None:
    get_client().log_metrics(_run_id(), metrics, step=step, timestamp=timestamp)


def log_param(key: str, value: Any) -> None:
    get_client().log_param(_run_id(), key, value)


def log_params(params: Mapping[str, Any]) -> None:
    get_client().log_params(_run_id(), params)


def set_tag(key: str, value: Any) -> None:
    get_client().set_tag(_run_id(), key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    get_client().set_tags(_run_id(), tags)


def log_batch(
    *,
    metrics: Sequence[Metric] = (),
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> None:
    get_client().log_batch(_run_id(), metrics=metrics, params=params, tags=tags)


def log_input(
    name: str, digest: str, *, source: str = "", source_type: str = "", context: str = ""
) -> None:
    """Record a dataset the active run read (name, content digest, where it came from)."""
    get_client().log_inputs(_run_id(), [DatasetInput(name, digest, source, source_type, context)])


def log_dataset_version(version: DatasetVersion, *, context: str = "input") -> None:
    """Record that the active run read (``input``) or wrote (``output``) a dataset version."""
    get_client().log_dataset_version(_run_id(), version, context=context)


def log_artifact(path: str | os.PathLike[str], *, name: str | None = None) -> ArtifactRef:
    return get_client().log_artifact(_run_id(), path, name=name)


def log_artifacts(directory: str | os.PathLike[str], *, name: str | None = None) -> ArtifactRef:
    return get_client().log_artifacts(_run_id(), Path(directory), name=name)


def log_dict(data: Mapping[str, Any], name: str) -> ArtifactRef:
    return get_client().log_dict(_run_id(), data, name)


def log_text(text: str, name: str) -> ArtifactRef:
    return get_client().log_text(_run_id(), text, name)


def log_figure(figure: Any, name: str) -> ArtifactRef:
    return get_client().log_figure(_run_id(), figure, name)


def flush() -> None:
    scope = _scope.get()
    client = scope.client if scope is not None else _client
    if client is not None:
        client.flush()


# -- process exit ----------------------------------------------------------------------------
def _end_all(status: RunStatus) -> None:
    while _stack:
        try:
            end_run(status, run_id=_stack[0].run_id)
        except Exception as exc:  # the store is gone: nothing more can be saved
            print(f"loopml: could not end run {_stack[0].run_id}: {exc}", file=sys.stderr)
            del _stack[:]
    if _client is not None:
        _client.close()


def _at_exit() -> None:
    last = getattr(sys, "last_value", None)  # set when an uncaught exception ended the program
    _end_all(_status_for(last) if last is not None else RunStatus.FINISHED)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _end_all(RunStatus.KILLED)
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, previous)
    os.kill(os.getpid(), signum)


_previous_handlers: dict[int, Any] = {}


def _install_hooks() -> None:
    """atexit always; a SIGTERM handler when started from the main thread."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous is not signal.SIG_IGN:
            _previous_handlers[signal.SIGTERM] = previous
            signal.signal(signal.SIGTERM, _on_sigterm)


def _reset_after_fork() -> None:
    # A forked child starts with no runs of its own and a fresh client.
    global _client, _hooks_installed
    _client = None
    _stack.clear()
    _hooks_installed = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
