"""The metric buffer: ``log_metric`` appends to memory, a background thread writes in batches.

A point is written at the latest ``interval_s`` after it was logged, sooner when
``max_points`` are waiting, and at once on :meth:`flush` (run end, exceptions, signals,
interpreter exit). A failed write keeps its points and is retried; nothing is dropped.
The same thread sends heartbeats for the runs being tracked, so a run whose process died
stops beating and can be found.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence

from loopml.core.entities import Metric

log = logging.getLogger(__name__)

WriteFn = Callable[[str, Sequence[Metric]], None]
HeartbeatFn = Callable[[Sequence[str], int], None]

_buffers: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


class MetricBuffer:
    def __init__(
        self,
        write: WriteFn,
        heartbeat: HeartbeatFn,
        *,
        interval_s: float = 0.5,
        max_points: int = 20_000,
        heartbeat_interval_s: float = 10.0,
    ) -> None:
        self._write = write
        self._heartbeat = heartbeat
        self._interval_s = interval_s
        self._max_points = max(1, max_points)
        self._heartbeat_interval_s = heartbeat_interval_s
        self._reset()
        _buffers.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: list[tuple[str, Metric]] = []
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._tracked: set[str] = set()
        self._last_error: BaseException | None = None

    # -- producer side (the hot path) --------------------------------------------------------
    def add(self, run_id: str, metric: Metric) -> None:
        with self._lock:
            pending = self._pending
            pending.append((run_id, metric))
            n = len(pending)
        if self._thread is None:
            self._start()
        if n >= self._max_points:
            if n >= 10 * self._max_points:
                self.flush()  # the writer cannot keep up: apply back-pressure
            else:
                self._wake.set()

    def add_many(self, run_id: str, metrics: Sequence[Metric]) -> None:
        with self._lock:
            self._pending.extend((run_id, m) for m in metrics)
            n = len(self._pending)
        if self._thread is None:
            self._start()
        if n >= self._max_points:
            self._wake.set()

    def track(self, run_id: str) -> None:
        self._tracked.add(run_id)
        if self._thread is None:
            self._start()

    def untrack(self, run_id: str) -> None:
        self._tracked.discard(run_id)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- writing -----------------------------------------------------------------------------
    def flush(self, run_id: str | None = None) -> None:
        """Write every buffered point now; raise if the store refuses them.

        With ``run_id`` only that run's points are required to be written (the others are
        written too when it is cheap, which it always is: one pass).
        """
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            by_run: dict[str, list[Metric]] = {}
            for rid, metric in batch:
                by_run.setdefault(rid, []).append(metric)
            done: set[str] = set()
            try:
                for rid, metrics in by_run.items():
                    self._write(rid, metrics)
                    done.add(rid)
            except BaseException:
                unwritten = [(r, m) for r, m in batch if r not in done]
                with self._lock:
                    self._pending[:0] = unwritten
                raise

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stopped:
                return
            self._thread = threading.Thread(
                target=self._loop, name="loopml-metric-writer", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        next_beat = time.monotonic() + self._heartbeat_interval_s
        while not self._stopped:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            try:
                self.flush()
                self._last_error = None
            except Exception as exc:  # kept in the buffer; retried on the next tick
                if self._last_error is None:
                    log.warning("loopml: writing metrics failed, will retry: %s", exc)
                self._last_error = exc
            if self._tracked and time.monotonic() >= next_beat:
                next_beat = time.monotonic() + self._heartbeat_interval_s
                try:
                    self._heartbeat(sorted(self._tracked), time.time_ns() // 1_000_000)
                except Exception as exc:
                    log.debug("loopml: heartbeat failed: %s", exc)

    def close(self) -> None:
        """Stop the thread after a last flush (which raises if it fails)."""
        self._stopped = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self.flush()


def _after_fork_in_child() -> None:
    # The child has no writer thread and must not write the parent's points twice.
    for buffer in list(_buffers):
        buffer._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
