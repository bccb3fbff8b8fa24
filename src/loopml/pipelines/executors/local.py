"""In-process executors: a thread pool for parallel branches, and the calling thread.

Threads share memory, so outputs pass to the next step as Python objects (they are stored all
the same, for the cache and for lineage). A step whose attempt times out cannot be killed in a
thread: the runner records the timeout and moves on, and the thread's late result is dropped.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

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
        self._pool = _DaemonPool(self.workers)

    def _slots(self, task: StepTask) -> float:
        wanted = float(task.step.options.resources.get("cpu", 1.0))
        return min(max(wanted, 0.0), float(self.workers))

    def has_room(self, task: StepTask) -> bool:
        with self._lock:
            return self._used == 0 or self._used + self._slots(task) <= self.workers

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        slots = self._slots(task)
        with self._lock:
            self._used += slots
        future = self._pool.submit(run_task, task, self.client)
        # the slots come back when the thread is done, not when the runner stops waiting: an
        # attempt abandoned after its timeout still holds its thread
        future.add_done_callback(lambda _: self._release(slots))
        return future

    def _release(self, slots: float) -> None:
        with self._lock:
            self._used = max(0.0, self._used - slots)

    def close(self) -> None:
        self._pool.shutdown()


class _DaemonPool:
    """A thread pool whose threads do not hold the interpreter open: a step still running
    when the pipeline was interrupted (or timed out) is abandoned at exit, not waited for
    (``concurrent.futures.ThreadPoolExecutor`` joins its threads at exit)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._tasks: queue.SimpleQueue[
            tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None
        ] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._tasks.put((future, fn, args))
        with self._lock:
            if len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._work, name=f"loopml-step-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while (item := self._tasks.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the waiting runner
                future.set_exception(exc)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)


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
