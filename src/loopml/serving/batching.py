"""Adaptive batching with admission control, one batcher per served model version.

An idle model runs a request at once, alone. A busy model queues requests; when its running
call ends, the queued requests run as one batch of up to ``max_batch_size`` rows. A model
whose calls cost less than a thread hop runs on the event loop itself. The cost of a call is
learned as ``a * rows + b`` from timed calls; with a deadline, a request that would finish
late is refused at once with :class:`~loopml.errors.Overloaded` instead of being queued.

Model calls run one at a time on one worker thread per batcher; every other piece of state
belongs to the event loop that calls :meth:`AdaptiveBatcher.submit`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Generic, TypeVar

from loopml.errors import InvalidArgument, InvalidState, LoopmlError, Overloaded

__all__ = ["AdaptiveBatcher", "BatcherStats", "CostModel"]

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("loopml.serving.batching")

_MIN_CALLS_TO_INLINE = 5  # learned calls needed before a model may run on the event loop
_SLOPE_RIDGE = 1.0  # rows², shrinks the per-row cost toward 0 until batch sizes vary


class CostModel:
    """Duration of one model call as ``per_row_s * rows + fixed_s``, both kept >= 0.

    Fitted by exponentially weighted least squares (each observation weighs ``decay`` times
    the one after it), so the fit follows a model whose speed changes. While every observed
    call had about the same size, the cost is taken as fixed rather than per row.
    """

    def __init__(self, *, decay: float = 0.9) -> None:
        if not 0.0 < decay <= 1.0:
            raise InvalidArgument(f"decay must be in (0, 1], got {decay!r}")
        self.decay = decay
        self.observations = 0
        self.per_row_s = 0.0
        self.fixed_s = 0.0
        self._w = self._sn = self._sy = self._snn = self._sny = 0.0

    def observe(self, rows: int, seconds: float) -> None:
        """Learn from one call of ``rows`` rows that took ``seconds``."""
        if rows < 0 or not 0.0 <= seconds < math.inf:
            raise InvalidArgument(
                f"a call needs rows >= 0 and a finite duration >= 0, got {rows!r} rows "
                f"in {seconds!r} s"
            )
        d = self.decay
        self._w = d * self._w + 1.0
        self._sn = d * self._sn + rows
        self._sy = d * self._sy + seconds
        self._snn = d * self._snn + rows * rows
        self._sny = d * self._sny + rows * seconds
        self.observations += 1
        self._fit()

    def predict(self, rows: int) -> float:
        """Expected seconds of one call on ``rows`` rows (0.0 before any observation)."""
        return self.per_row_s * rows + self.fixed_s

    def _fit(self) -> None:
        mean_n = self._sn / self._w
        mean_y = self._sy / self._w
        var_n = max(0.0, self._snn / self._w - mean_n * mean_n)
        cov = self._sny / self._w - mean_n * mean_y
        per_row = max(0.0, cov / (var_n + _SLOPE_RIDGE))
        fixed = mean_y - per_row * mean_n
        if fixed < 0.0:  # the line would cross zero: fit it through the origin instead
            fixed = 0.0
            per_row = self._sny / self._snn if self._snn > 0.0 else 0.0
        self.per_row_s = per_row
        self.fixed_s = fixed


@dataclass(frozen=True, slots=True)
class BatcherStats:
    """A snapshot of one batcher. ``batches`` counts every model call, inline ones too."""

    queue_depth: int
    queued_rows: int
    in_flight: bool
    batches: int
    rows: int
    inline_calls: int
    shed: int
    cost_per_row_s: float
    cost_fixed_s: float
    mean_batch_rows: float


@dataclass(slots=True, eq=False)
class _Pending(Generic[T, R]):
    """One queued request: its item, its caller's future and its deadline (loop time)."""

    item: T
    rows: int
    future: asyncio.Future[R]
    budget_ms: float | None = None
    deadline: float | None = None
    timer: asyncio.TimerHandle | None = None
    queued: bool = False
    solo: bool = False  # re-run alone after its batch failed


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one call of ``run_batch`` on the worker thread gave, and how long it took."""

    results: object
    error: BaseException | None
    seconds: float


class AdaptiveBatcher(Generic[T, R]):
    """Runs ``run_batch`` on batches of submitted items, one call at a time.

    ``run_batch(items)`` must return one result per item, in order. ``rows_of(item)`` says how
    many rows an item holds (default 1); a batch holds at most ``max_batch_size`` rows, except
    that an item larger than that runs alone. ``max_wait_ms`` lets a busy model wait that long
    for a batch to fill; an idle model never waits. ``deadline_ms`` (or ``submit``'s) bounds
    the time from submit to answer. ``on_batch(rows, seconds)`` is told of every model call.
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], list[R]],
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 0.0,
        deadline_ms: float | None = None,
        rows_of: Callable[[T], int] | None = None,
        inline_below_us: float = 250.0,
        on_batch: Callable[[int, float], None] | None = None,
        name: str = "",
    ) -> None:
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int):
            raise InvalidArgument(f"max_batch_size must be an int >= 1, got {max_batch_size!r}")
        if max_batch_size < 1:
            raise InvalidArgument(f"max_batch_size must be an int >= 1, got {max_batch_size!r}")
        if not 0.0 <= max_wait_ms < math.inf:
            raise InvalidArgument(f"max_wait_ms must be a number >= 0, got {max_wait_ms!r}")
        if not 0.0 <= inline_below_us < math.inf:
            raise InvalidArgument(
                f"inline_below_us must be a number >= 0 (0 never inlines), got {inline_below_us!r}"
            )
        self._run_batch = run_batch
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_ms / 1000.0
        self._deadline_ms = _checked_deadline(deadline_ms)
        self._rows_of = rows_of
        self._inline_below_s = inline_below_us / 1e6
        self._on_batch = on_batch
        self.name = name
        self._label = f"model {name!r}" if name else "the batched model"
        self._cost = CostModel()
        self._seen_first_call = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._queue: deque[_Pending[T, R]] = deque()
        self._queued_items = 0
        self._queued_rows = 0
        self._in_flight = False
        self._running_rows = 0
        self._running_since = 0.0
        self._fill_timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._drained: asyncio.Future[None] | None = None
        self._batches = 0
        self._rows = 0
        self._inline_calls = 0
        self._shed = 0

    # -- public API ---------------------------------------------------------------------------

    async def submit(self, item: T, *, deadline_ms: float | None = None) -> R:
        """The result of ``item``; raises what the model raised for it, or :class:`Overloaded`
        when it would not be answered within the deadline."""
        loop = self._bind_loop()
        if self._closing:
            raise InvalidState(f"{self._label} is closed and takes no new requests")
        rows = self._rows_in(item)
        budget_ms = self._deadline_ms if deadline_ms is None else _checked_deadline(deadline_ms)
        idle = not self._in_flight and self._queued_items == 0
        if idle and self._runs_inline(rows):
            return self._call_inline(item, rows)
        if not idle and budget_ms is not None:
            self._admit(rows, budget_ms)
        pending: _Pending[T, R] = _Pending(item, rows, loop.create_future())
        if idle:
            self._start([pending])
        else:
            if budget_ms is not None:
                pending.budget_ms = budget_ms
                pending.deadline = loop.time() + budget_ms / 1000.0
                pending.timer = loop.call_at(pending.deadline, self._on_deadline, pending)
            self._enqueue(pending)
            if self._fill_timer is not None and self._queued_rows >= self._max_batch_size:
                self._dispatch()
        try:
            return await pending.future
        except asyncio.CancelledError:
            if pending.queued:
                self._forget(pending)
            elif pending.future.done() and not pending.future.cancelled():
                pending.future.exception()  # mark as retrieved: nobody else will read it
            raise

    def stats(self) -> BatcherStats:
        """Queue, throughput and learned cost of this batcher now."""
        return BatcherStats(
            queue_depth=self._queued_items,
            queued_rows=self._queued_rows,
            in_flight=self._in_flight,
            batches=self._batches,
            rows=self._rows,
            inline_calls=self._inline_calls,
            shed=self._shed,
            cost_per_row_s=self._cost.per_row_s,
            cost_fixed_s=self._cost.fixed_s,
            mean_batch_rows=self._rows / self._batches if self._batches else 0.0,
        )

    async def aclose(self) -> None:
        """Refuse new requests (:class:`InvalidState`), finish the queued ones, stop the thread."""
        self._closing = True
        if self._loop is not None and (self._in_flight or self._queued_items):
            loop = self._bind_loop()
            if self._fill_timer is not None:
                self._dispatch()
            if self._drained is None or self._drained.done():
                self._drained = loop.create_future()
            await asyncio.shield(self._drained)
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    async def __aenter__(self) -> AdaptiveBatcher[T, R]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- admission ----------------------------------------------------------------------------

    def _admit(self, rows: int, budget_ms: float) -> None:
        """Raise :class:`Overloaded` when a request of ``rows`` would finish after its budget.

        The estimate adds the running call's remaining time, the queued rows ahead run in
        batches of ``max_batch_size``, the request's own batch and one ``max_wait_ms``.
        """
        m = self._max_batch_size
        queued = self._queued_rows
        batches_ahead = -(-queued // m)
        joins_last = queued > 0 and rows <= batches_ahead * m - queued
        own_batch = 0 if joins_last else 1
        finish_s = (
            self._running_left_s()
            + self._max_wait_s
            + self._cost.per_row_s * (queued + rows)
            + self._cost.fixed_s * (batches_ahead + own_batch)
        )
        if finish_s * 1000.0 <= budget_ms:
            return
        retry = self._retry_after_s()
        self._shed += 1
        raise Overloaded(
            f"{self._label} is overloaded: the estimated time to answer, {finish_s * 1000:.0f} "
            f"ms with {queued} rows queued, exceeds the deadline of {budget_ms:g} ms; retry "
            f"after {retry} s",
            retry_after_s=retry,
            estimated_ms=round(finish_s * 1000.0, 1),
            deadline_ms=budget_ms,
            queued_rows=queued,
        )

    def _on_deadline(self, pending: _Pending[T, R]) -> None:
        self._expire(pending)
        if not self._in_flight and self._queued_items == 0:
            self._became_idle()

    def _expire(self, pending: _Pending[T, R]) -> None:
        """Fail a request still queued at its deadline with :class:`Overloaded`."""
        if not pending.queued:
            return
        self._unqueue(pending)
        if pending.future.done() or pending.budget_ms is None:
            return
        retry = self._retry_after_s()
        self._shed += 1
        pending.future.set_exception(
            Overloaded(
                f"{self._label} is overloaded: the request was still queued at its deadline "
                f"of {pending.budget_ms:g} ms; retry after {retry} s",
                retry_after_s=retry,
                deadline_ms=pending.budget_ms,
                queued_rows=self._queued_rows,
            )
        )

    def _retry_after_s(self) -> int:
        """Whole seconds until the running call and the queue should be done (at least 1)."""
        queued = self._queued_rows
        backlog_s = (
            self._running_left_s()
            + self._cost.per_row_s * queued
            + self._cost.fixed_s * -(-queued // self._max_batch_size)
        )
        return max(1, math.ceil(backlog_s))

    def _running_left_s(self) -> float:
        if not self._in_flight:
            return 0.0
        elapsed = perf_counter() - self._running_since
        return max(0.0, self._cost.predict(self._running_rows) - elapsed)

    # -- the queue ----------------------------------------------------------------------------

    def _enqueue(self, pending: _Pending[T, R]) -> None:
        pending.queued = True
        self._queue.append(pending)
        self._queued_items += 1
        self._queued_rows += pending.rows

    def _unqueue(self, pending: _Pending[T, R]) -> None:
        """Take ``pending`` off the books (its queue entry is dropped when reached)."""
        if not pending.queued:
            return
        pending.queued = False
        self._queued_items -= 1
        self._queued_rows -= pending.rows
        if pending.timer is not None:
            pending.timer.cancel()
            pending.timer = None
        if self._queued_items == 0:
            self._queue.clear()
            if self._fill_timer is not None:
                self._fill_timer.cancel()
                self._fill_timer = None

    def _forget(self, pending: _Pending[T, R]) -> None:
        """Drop a request that left the queue unrun (its caller was cancelled)."""
        self._unqueue(pending)
        if not self._in_flight and self._queued_items == 0:
            self._became_idle()

    def _head(self) -> _Pending[T, R] | None:
        """The first live queued request, dropping cancelled ones before it."""
        while self._queue:
            pending = self._queue[0]
            if pending.queued and not pending.future.done():
                return pending
            self._queue.popleft()
            self._unqueue(pending)
        return None

    def _take_batch(self, now: float) -> list[_Pending[T, R]]:
        """Queued requests in arrival order up to ``max_batch_size`` rows, never split."""
        batch: list[_Pending[T, R]] = []
        rows = 0
        while rows < self._max_batch_size and (pending := self._head()) is not None:
            if pending.solo:
                if not batch:
                    self._queue.popleft()
                    self._unqueue(pending)
                    batch.append(pending)
                break
            if pending.deadline is not None and now >= pending.deadline:
                self._queue.popleft()
                self._expire(pending)
                continue
            if batch and rows + pending.rows > self._max_batch_size:
                break
            self._queue.popleft()
            self._unqueue(pending)
            batch.append(pending)
            rows += pending.rows
        return batch

    def _dispatch(self) -> None:
        """Start the next batch if the model is free (called when it frees up or fills)."""
        if self._fill_timer is not None:
            self._fill_timer.cancel()
            self._fill_timer = None
        if self._in_flight or self._loop is None:
            return
        batch = self._take_batch(self._loop.time())
        if batch:
            self._start(batch)
        elif self._queued_items == 0:
            self._became_idle()

    def _after_call(self) -> None:
        """The model just freed up: run the queue now, or wait for the batch to fill."""
        head = self._head()
        if head is None or self._loop is None:
            self._became_idle()
            return
        if (
            self._max_wait_s > 0.0
            and not self._closing
            and not head.solo
            and self._queued_rows < self._max_batch_size
        ):
            self._fill_timer = self._loop.call_later(self._max_wait_s, self._dispatch)
            return
        self._dispatch()

    def _became_idle(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- model calls --------------------------------------------------------------------------

    def _runs_inline(self, rows: int) -> bool:
        return (
            self._cost.observations >= _MIN_CALLS_TO_INLINE
            and self._cost.predict(rows) < self._inline_below_s
        )

    def _call_inline(self, item: T, rows: int) -> R:
        start = perf_counter()
        try:
            out = self._run_batch([item])
        except BaseException:
            self._record(rows, perf_counter() - start, learn=False, inline=True)
            raise
        self._record(rows, perf_counter() - start, learn=True, inline=True)
        return self._results(out, 1)[0]

    def _start(self, batch: list[_Pending[T, R]]) -> None:
        """Run ``batch`` (on the worker thread unless it is cheap); answer its callers after."""
        loop = self._loop
        assert loop is not None
        rows = sum(pending.rows for pending in batch)
        items = [pending.item for pending in batch]
        self._in_flight = True
        self._running_rows = rows
        self._running_since = perf_counter()
        if self._runs_inline(rows):  # the queue built up while a thread call ran: catch up
            try:
                outcome = self._timed_call(items)
                self._record(rows, outcome.seconds, learn=outcome.error is None, inline=True)
                self._answer(batch, outcome)
            finally:  # free the model on the next loop turn: I/O may run between batches
                loop.call_soon(self._freed)
            return
        if self._pool is None:
            prefix = f"loopml-batch-{self.name}" if self.name else "loopml-batch"
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=prefix)
        call = loop.run_in_executor(self._pool, self._timed_call, items)
        call.add_done_callback(lambda done: self._finished(batch, rows, done))

    def _timed_call(self, items: list[T]) -> _Outcome:
        """The model call and its timing (on the worker thread, or inline when cheap)."""
        start = perf_counter()
        try:
            results: object = self._run_batch(items)
        except Exception as exc:
            return _Outcome(None, exc, perf_counter() - start)
        return _Outcome(results, None, perf_counter() - start)

    def _finished(
        self, batch: list[_Pending[T, R]], rows: int, done: asyncio.Future[_Outcome]
    ) -> None:
        try:
            if done.cancelled() or done.exception() is not None:
                reason = "was cancelled" if done.cancelled() else f"failed: {done.exception()!r}"
                outcome = _Outcome(None, LoopmlError(f"the worker thread {reason}"), 0.0)
            else:
                outcome = done.result()
                self._record(rows, outcome.seconds, learn=outcome.error is None, inline=False)
            self._answer(batch, outcome)
        finally:
            self._freed()

    def _freed(self) -> None:
        self._in_flight = False
        self._after_call()

    def _answer(self, batch: list[_Pending[T, R]], outcome: _Outcome) -> None:
        if outcome.error is None:
            try:
                results = self._results(outcome.results, len(batch))
            except LoopmlError as exc:
                for pending in batch:
                    _fail(pending, LoopmlError(exc.message, **exc.details))
                return
            for pending, result in zip(batch, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(result)
        elif len(batch) == 1:
            _fail(batch[0], outcome.error)
        else:  # re-run each item alone, first in line, so only the bad item's caller fails
            for pending in reversed(batch):
                if not pending.future.done():
                    pending.solo = True
                    pending.queued = True
                    self._queue.appendleft(pending)
                    self._queued_items += 1
                    self._queued_rows += pending.rows

    def _results(self, out: object, count: int) -> list[R]:
        if isinstance(out, list) and len(out) == count:
            return out
        got = f"a list of {len(out)} results" if isinstance(out, list) else type(out).__name__
        raise LoopmlError(
            f"run_batch of {self._label} returned {got} for {count} items; it must return a "
            f"list of exactly {count} results, one per item in order",
            items=count,
        )

    def _record(self, rows: int, seconds: float, *, learn: bool, inline: bool) -> None:
        self._batches += 1
        self._rows += rows
        if inline:
            self._inline_calls += 1
        if learn:
            if self._seen_first_call:
                self._cost.observe(rows, seconds)
            else:  # the first call often pays one-off set-up costs: not a fair sample
                self._seen_first_call = True
        if self._on_batch is not None:
            try:
                self._on_batch(rows, seconds)
            except Exception:
                log.debug("on_batch of %s raised; ignored", self._label, exc_info=True)

    # -- checks -------------------------------------------------------------------------------

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise InvalidState(
                f"{self._label} belongs to the event loop that first used it; make one "
                f"batcher per event loop"
            )
        return loop

    def _rows_in(self, item: T) -> int:
        if self._rows_of is None:
            return 1
        rows = self._rows_of(item)
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise InvalidArgument(
                f"rows_of returned {rows!r} for a {type(item).__name__}; it must return an int >= 0"
            )
        return rows


def _checked_deadline(deadline_ms: float | None) -> float | None:
    if deadline_ms is not None and not 0.0 < deadline_ms < math.inf:
        raise InvalidArgument(f"deadline_ms must be a number > 0 or None, got {deadline_ms!r}")
    return deadline_ms


def _fail(pending: _Pending[Any, Any], error: BaseException) -> None:
    if not pending.future.done():
        pending.future.set_exception(error)
