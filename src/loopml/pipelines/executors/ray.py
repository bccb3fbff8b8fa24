"""Run steps as Ray tasks: each task reads its inputs from, and writes its outputs to, the shared
artifact store, so the driver and the workers exchange only digests.

The driver keeps deciding, caching and recording (the store is written from the driver and
from the tasks' own tracking runs); a task gets its step, its parameters and the digests of
its inputs, and hands back the digests of its outputs. Resources map to Ray's task options
(``cpu`` to ``num_cpus``, ``gpu`` to ``num_gpus``, ``memory_mb`` to ``memory``); a timed-out
attempt is cancelled with ``ray.cancel(force=True)``.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from loopml.pipelines.executors.base import Executor, StepOutcome, StepTask, TaskInput

if TYPE_CHECKING:
    from loopml.settings import Settings
    from loopml.tracking.client import Client

_lock = threading.Lock()
_remote: Any = None
_clients: dict[Any, Client] = {}  # in a worker process: one client per settings


def ensure_ray(address: str = "") -> Any:
    """The ``ray`` module, initialised once per process.

    ``address`` empty: start a local cluster sized to this machine; otherwise connect to it
    (``auto``, ``ray://host:10001``, ``host:6379``).
    """
    import ray

    with _lock:
        if not ray.is_initialized():
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": True,
                "ignore_reinit_error": True,
            }
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=os.cpu_count() or 1, **options)
    return ray


def worker_settings(settings: Settings) -> Settings:
    """``settings`` for a worker process: stores as absolute URIs (its working folder is not
    the driver's); an in-memory artifact store, which no other process can see, is refused."""
    import dataclasses

    from loopml.errors import InvalidArgument

    artifact_uri = settings.resolved_artifact_uri
    if artifact_uri.startswith("memory://"):
        raise InvalidArgument(
            f"Ray workers cannot use the artifact store {artifact_uri!r}: memory:// lives in "
            "one process; use a folder or s3:// shared with the workers"
        )
    return dataclasses.replace(
        settings,
        workspace=settings.workspace.absolute(),
        store_uri=settings.resolved_store_uri,
        artifact_uri=artifact_uri,
    )


def ship_by_value(ray: Any, function: Any) -> None:
    """Pickle the module of ``function`` by value when workers could not import it by name
    (a script, a file loaded by path): everything else is imported in the worker."""
    import sys

    module = sys.modules.get(getattr(function, "__module__", "") or "")
    if module is None or module.__name__ in _by_value:
        return
    origin = getattr(module, "__file__", None) or ""
    if "site-packages" in origin or "dist-packages" in origin:
        return
    if module.__name__ == "__main__" or module.__name__.startswith("loopml."):
        return  # __main__ goes by value anyway; loopml is installed in the workers
    ray.cloudpickle.register_pickle_by_value(module)
    _by_value.add(module.__name__)


_by_value: set[str] = set()


def _worker_client(settings: Settings) -> Client:
    from loopml.tracking.client import Client

    client = _clients.get(settings)
    if client is None:
        client = _clients[settings] = Client(settings=settings)
    return client


def _execute(task: StepTask) -> StepOutcome:
    """The body of the Ray task (runs in a worker process)."""
    from loopml.pipelines.executors.base import run_task

    client = _worker_client(task.settings)
    try:
        return run_task(task, client)
    finally:
        client.flush()


def _remote_function(ray: Any) -> Any:
    global _remote
    with _lock:
        if _remote is None:
            _remote = ray.remote(max_retries=0)(_execute)
    return _remote


class RayExecutor(Executor):
    """Each step attempt is one Ray task on the cluster at ``settings.ray_address``."""

    name = "ray"
    interrupts = True
    in_process = False

    def __init__(self, client: Client, *, address: str | None = None) -> None:
        self.client = client
        self.settings = worker_settings(client.settings)
        self.ray = ensure_ray(client.settings.ray_address if address is None else address)
        self._refs: dict[Future[StepOutcome], Any] = {}

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        ship_by_value(self.ray, task.step.fn)
        shipped = dataclasses.replace(  # digests only, no objects
            task,
            inputs={
                name: TaskInput(given.output, dataset=given.dataset, as_path=given.as_path)
                for name, given in task.inputs.items()
            },
            settings=self.settings,
            keep_values=False,
        )
        resources = task.step.options.resources
        options: dict[str, Any] = {"num_cpus": float(resources.get("cpu", 1.0))}
        if resources.get("gpu"):
            options["num_gpus"] = float(resources["gpu"])
        if resources.get("memory_mb"):
            options["memory"] = int(float(resources["memory_mb"]) * 1024 * 1024)
        ref = _remote_function(self.ray).options(**options).remote(shipped)
        future: Future[StepOutcome] = Future()
        self._refs[future] = ref

        def settle(done: Future[StepOutcome]) -> None:  # a crashed worker is a failed attempt
            self._refs.pop(future, None)
            if future.done():
                return
            try:
                future.set_result(done.result())
            except BaseException as exc:
                message = f"{type(exc).__name__}: {exc}"
                future.set_result(
                    StepOutcome(error=message, error_summary=message[:500], retryable=True)
                )

        ref.future().add_done_callback(settle)
        return future

    def cancel(self, future: Future[StepOutcome]) -> None:
        ref = self._refs.pop(future, None)
        if ref is not None:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # already finished or gone: nothing left to stop
                return
