"""In-process executors: a thread pool for parallel branches, and the calling thread.

Threads share memory, so outputs pass to the next step as Python objects (they are stored all
the same, for the cache and for lineage). A step whose attempt times out cannot be killed in a
thread: the runner records the timeout and moves on, and the thread's late result is dropped.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from loopml.errors import InvalidArgument
from loopml.pipelines.executors.base import Executor, StepOutcome, StepTask, run_task
from loopml.tracking.client import Client


class LocalExecutor(Executor):
    """Runs steps on up to ``workers`` threads; a step asking ``resources={"cpu": n}`` takes
    ``n`` of the ``workers`` slots (at most all of them)."""

    name = "local"

    def __init__(self, client: Client, *, workers: int = 0) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise InvalidArgument(f"invalid workers={workers!r}: must be a whole number >= 0")
        self.client = client
        self.workers = workers or os.cpu_count() or 1
        self._used = 0.0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="loopml-step")

    def _slots(self, task: StepTask) -> float:
        wanted = float(task.step.options.resources.get("cpu", 1.0))
        return min(max(wanted, 0.0), float(self.workers))

    def has_room(self, task: StepTask) -> bool:
        with self._lock:
            return self._used == 0 or self._used + self._slots(task) <= self.workers

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        with self._lock:
            self._used += self._slots(task)
        return self._pool.submit(run_task, task, self.client)

    def release(self, task: StepTask) -> None:
        with self._lock:
            self._used = max(0.0, self._used - self._slots(task))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class SequentialExecutor(Executor):
    """Runs each step in the calling thread, one after the other (no timeouts: an attempt
    cannot be interrupted there). The least overhead, and the easiest to debug."""

    name = "sequential"

    def __init__(self, client: Client) -> None:
        self.client = client

    def has_room(self, task: StepTask) -> bool:
        return True

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        future: Future[StepOutcome] = Future()
        future.set_result(run_task(task, self.client))
        return future
