"""Run steps as Ray tasks: each task reads its inputs from, and writes its outputs to, the shared
artifact store, so the driver and the workers exchange only digests.

The driver keeps deciding, caching and recording (the store is written from the driver and
from the tasks' own tracking runs); a task gets its step, its parameters and the digests of
its inputs, and hands back the digests of its outputs. Resources map to Ray's task options
(``cpu`` to ``num_cpus``, ``gpu`` to ``num_gpus``, ``memory_mb`` to ``memory``); a timed-out
attempt is cancelled with ``ray.cancel(force=True)``.
"""

from __future__ import annotations

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

    def __init__(self, client: Client, *, address: str | None = None) -> None:
        self.client = client
        self.ray = ensure_ray(client.settings.ray_address if address is None else address)
        self._refs: dict[Future[StepOutcome], Any] = {}

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        shipped = StepTask(
            pipeline_run_id=task.pipeline_run_id,
            node=task.node,
            step=task.step,
            params=task.params,
            inputs={
                name: TaskInput(given.output, dataset=given.dataset, as_path=given.as_path)
                for name, given in task.inputs.items()
            },  # digests only, no objects
            settings=task.settings,
            tracking=task.tracking,
            attempt=task.attempt,
            keep_values=False,
        )
        resources = task.step.options.resources
        options: dict[str, Any] = {"num_cpus": float(resources.get("cpu", 1.0))}
        if resources.get("gpu"):
            options["num_gpus"] = float(resources["gpu"])
        if resources.get("memory_mb"):
            options["memory"] = int(float(resources["memory_mb"]) * 1024 * 1024)
        ref = _remote_function(self.ray).options(**options).remote(shipped)
        future: Future[StepOutcome] = ref.future()
        self._refs[future] = ref
        future.add_done_callback(lambda done: self._refs.pop(done, None))
        return future

    def cancel(self, future: Future[StepOutcome]) -> None:
        ref = self._refs.pop(future, None)
        if ref is not None:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # already finished or gone: nothing left to stop
                return
