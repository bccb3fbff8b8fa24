"""The adaptive batcher against real run_batch functions on its real worker thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from loopml.errors import InvalidArgument, InvalidState, LoopmlError, Overloaded
from loopml.serving.batching import AdaptiveBatcher, CostModel


class Model:
    """A run_batch that records every batch and the thread it ran on; answers item * 10.

    ``hold()`` makes calls block until ``release()``, to keep the model busy while a test
    queues requests behind it; ``fail_on`` makes any batch holding that item raise.
    """

    def __init__(
        self,
        *,
        sleep_s: float = 0.0,
        fail_on: object = None,
        answer: Callable[[Any], Any] = lambda item: item * 10,
    ) -> None:
        self.sleep_s = sleep_s
        self.answer = answer
        self.fail_on = fail_on
        self.batches: list[list[Any]] = []
        self.threads: list[int] = []
        self.entered = threading.Event()
        self._gate = threading.Event()
        self._gate.set()

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def __call__(self, items: list[Any]) -> list[Any]:
        self.batches.append(list(items))
        self.threads.append(threading.get_ident())
        self.entered.set()
        assert self._gate.wait(timeout=30), "the test never released the model"
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"bad item {self.fail_on!r}")
        return [self.answer(item) for item in items]


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), timeout=60))


async def settle() -> None:
    """Let every ready task run up to its next wait."""
    for _ in range(20):
        await asyncio.sleep(0)


async def busy_with_first(batcher: AdaptiveBatcher[Any, Any], model: Model, first: Any) -> Any:
    """Submit ``first`` to a held model and return its task once the model is running it."""
    model.hold()
    task = asyncio.create_task(batcher.submit(first))
    await settle()
    assert await asyncio.to_thread(model.entered.wait, 30)
    assert batcher.stats().in_flight
    return task


def test_concurrent_submits_each_get_their_own_result_from_shared_batches() -> None:
    model = Model(sleep_s=0.002)

    async def main() -> None:
        async with AdaptiveBatcher(model, max_batch_size=16) as batcher:
            results = await asyncio.gather(*(batcher.submit(i) for i in range(300)))
            assert results == [i * 10 for i in range(300)]
            stats = batcher.stats()
        sizes = [len(batch) for batch in model.batches]
        assert max(sizes) > 1
        assert max(sizes) <= 16
        assert sum(sizes) == 300
        assert sorted(item for batch in model.batches for item in batch) == list(range(300))
        assert stats.batches == len(sizes)
        assert stats.rows == 300
        assert stats.mean_batch_rows == pytest.approx(300 / len(sizes))

    run(main)


def test_batches_hold_at_most_max_batch_size_rows_and_never_split_an_item() -> None:
    model = Model(answer=lambda item: item[0])
    items = [(i, 3) for i in range(6)] + [(6, 25)] + [(i, 2) for i in range(7, 12)]

    async def main() -> None:
        batcher = AdaptiveBatcher(model, max_batch_size=10, rows_of=lambda item: item[1])
        first = await busy_with_first(batcher, model, (-1, 1))
        tasks = [asyncio.create_task(batcher.submit(item)) for item in items]
        await settle()
        assert batcher.stats().queued_rows == sum(rows for _, rows in items)
        model.release()
        assert await first == -1
        assert await asyncio.gather(*tasks) == [ident for ident, _ in items]
        await batcher.aclose()

    run(main)
    queued = model.batches[1:]
    assert [item for batch in queued for item in batch] == items  # arrival order, nothing split
    for batch in queued:
        assert sum(rows for _, rows in batch) <= 10 or len(batch) == 1
    assert [(6, 25)] in queued  # the oversized item ran alone


def test_sequential_submits_on_an_idle_batcher_run_alone() -> None:
    model = Model(sleep_s=0.001)

    async def main() -> None:
        async with AdaptiveBatcher(model) as batcher:
            for i in range(15):
                assert await batcher.submit(i) == i * 10

    run(main)
    assert [len(batch) for batch in model.batches] == [1] * 15


def test_a_cheap_model_ends_up_running_on_the_event_loop_thread() -> None:
    threads: list[int] = []

    def cheap(items: list[int]) -> list[int]:
        threads.append(threading.get_ident())
        return [item + 1 for item in items]

    async def main() -> None:
        loop_thread = threading.get_ident()
        async with AdaptiveBatcher(cheap, inline_below_us=250.0) as batcher:
            calls = 0
            while batcher.stats().inline_calls < 10 and calls < 5000:
                assert await batcher.submit(calls) == calls + 1
                calls += 1
            stats = batcher.stats()
        assert threads[0] != loop_thread  # cost unknown at first: the worker thread
        assert threads[-1] == loop_thread
        assert stats.inline_calls == 10
        assert stats.batches == calls

    run(main)


def test_a_cheap_model_catches_up_on_a_queue_on_the_event_loop_thread() -> None:
    calls: list[tuple[int, int]] = []

    def cheap(items: list[int]) -> list[int]:
        calls.append((threading.get_ident(), len(items)))
        return [item + 1 for item in items]

    async def main() -> None:
        loop_thread = threading.get_ident()
        async with AdaptiveBatcher(cheap, max_batch_size=8) as batcher:
            results = await asyncio.gather(*(batcher.submit(i) for i in range(400)))
        assert results == [i + 1 for i in range(400)]
        assert calls[0][0] != loop_thread
        assert any(thread == loop_thread and size > 1 for thread, size in calls)
        assert all(size <= 8 for _, size in calls)

    run(main)


def test_an_expensive_model_never_runs_on_the_event_loop_thread() -> None:
    model = Model(sleep_s=0.002)

    async def main() -> None:
        loop_thread = threading.get_ident()
        async with AdaptiveBatcher(model, inline_below_us=250.0) as batcher:
            for i in range(20):
                await batcher.submit(i)
            assert batcher.stats().inline_calls == 0
            assert batcher.stats().cost_fixed_s + batcher.stats().cost_per_row_s > 0.0
        assert loop_thread not in model.threads

    run(main)


def test_a_bad_item_in_a_batch_fails_only_its_own_caller() -> None:
    model = Model(fail_on=13)

    async def main() -> None:
        batcher = AdaptiveBatcher(model)
        first = await busy_with_first(batcher, model, 1)
        tasks = [asyncio.create_task(batcher.submit(i)) for i in (2, 13, 4)]
        await settle()
        model.release()
        outcomes = await asyncio.gather(first, *tasks, return_exceptions=True)
        await batcher.aclose()
        assert outcomes[0] == 10
        assert outcomes[1] == 20
        assert isinstance(outcomes[2], ValueError)
        assert str(outcomes[2]) == "bad item 13"
        assert outcomes[3] == 40

    run(main)
    assert model.batches == [[1], [2, 13, 4], [2], [13], [4]]


def test_a_lone_item_error_reaches_its_caller_unchanged() -> None:
    raised: list[Exception] = []

    def failing(items: list[int]) -> list[int]:
        raised.append(KeyError(f"no feature for {items[0]}"))
        raise raised[-1]

    async def main() -> None:
        async with AdaptiveBatcher(failing) as batcher:
            with pytest.raises(KeyError) as caught:
                await batcher.submit(7)
        assert caught.value is raised[0]

    run(main)


def test_a_result_count_mismatch_fails_every_caller_of_the_batch() -> None:
    model = Model()

    def short(items: list[int]) -> list[int]:
        return model(items)[:-1]

    async def main() -> None:
        batcher = AdaptiveBatcher(short)
        first = await busy_with_first(batcher, model, 1)
        tasks = [asyncio.create_task(batcher.submit(i)) for i in (2, 3, 4)]
        await settle()
        model.release()
        outcomes = await asyncio.gather(first, *tasks, return_exceptions=True)
        await batcher.aclose()
        for outcome in outcomes:
            assert type(outcome) is LoopmlError
            assert "must return a list of exactly" in str(outcome)
        assert "returned a list of 2 results for 3 items" in str(outcomes[1])

    run(main)
    assert model.batches == [[1], [2, 3, 4]]  # a contract bug is not retried item by item


def test_deadline_sheds_requests_that_would_finish_late_and_answers_the_rest() -> None:
    model = Model(sleep_s=0.02)

    async def main() -> None:
        async with AdaptiveBatcher(model, max_batch_size=4, deadline_ms=60) as batcher:
            for i in range(4):  # learn the cost: an idle batcher never sheds
                assert await batcher.submit(i) == i * 10
            assert batcher.stats().shed == 0
            outcomes = await asyncio.gather(
                *(batcher.submit(i) for i in range(100)), return_exceptions=True
            )
            stats = batcher.stats()
        shed = [o for o in outcomes if isinstance(o, Overloaded)]
        answered = [(i, o) for i, o in enumerate(outcomes) if not isinstance(o, Overloaded)]
        assert shed
        assert answered
        for error in shed:
            assert isinstance(error.details["retry_after_s"], int)
            assert error.details["retry_after_s"] >= 1
            assert error.details["deadline_ms"] == 60
            assert error.http_status == 503
        assert "exceeds the deadline of 60 ms" in str(shed[-1])
        for i, result in answered:
            assert result == i * 10
        assert stats.shed == len(shed)

    run(main)


def test_a_queued_request_past_its_deadline_is_shed_without_running() -> None:
    model = Model()

    async def main() -> None:
        batcher = AdaptiveBatcher(model)
        first = await busy_with_first(batcher, model, 1)
        with pytest.raises(Overloaded) as caught:
            await batcher.submit(2, deadline_ms=30)  # the model stays busy past the deadline
        assert caught.value.details["retry_after_s"] >= 1
        assert "still queued at its deadline of 30 ms" in str(caught.value)
        assert batcher.stats().queue_depth == 0
        model.release()
        assert await first == 10
        assert await batcher.submit(3) == 30
        assert batcher.stats().shed == 1
        await batcher.aclose()

    run(main)
    assert model.batches == [[1], [3]]


def test_cancelled_queued_callers_are_skipped_and_others_answered() -> None:
    model = Model()

    async def main() -> None:
        batcher = AdaptiveBatcher(model)
        first = await busy_with_first(batcher, model, 1)
        tasks = {i: asyncio.create_task(batcher.submit(i)) for i in (2, 3, 4)}
        await settle()
        assert batcher.stats().queue_depth == 3
        tasks[3].cancel()
        await settle()
        assert batcher.stats().queue_depth == 2
        assert batcher.stats().queued_rows == 2
        model.release()
        assert await first == 10
        assert await tasks[2] == 20
        assert await tasks[4] == 40
        assert tasks[3].cancelled()
        await batcher.aclose()

    run(main)
    assert model.batches == [[1], [2, 4]]


def test_max_wait_fills_a_batch_after_a_busy_call_but_a_lone_request_never_waits() -> None:
    model = Model()

    async def main() -> None:
        batcher = AdaptiveBatcher(model, max_batch_size=4, max_wait_ms=60_000)
        assert await asyncio.wait_for(batcher.submit(0), timeout=10) == 0  # idle: no window
        first = await busy_with_first(batcher, model, 1)
        tasks = [asyncio.create_task(batcher.submit(i)) for i in (2, 3, 4)]
        await settle()
        model.release()
        assert await first == 10
        await settle()
        assert batcher.stats().queue_depth == 3  # waiting for the batch to fill
        assert not batcher.stats().in_flight
        tasks.append(asyncio.create_task(batcher.submit(5)))  # fills it: runs at once
        assert await asyncio.wait_for(asyncio.gather(*tasks), timeout=10) == [20, 30, 40, 50]
        await batcher.aclose()

    run(main)
    assert model.batches == [[0], [1], [2, 3, 4, 5]]


def test_aclose_drains_queued_work_then_refuses_new_work() -> None:
    model = Model()

    async def main() -> None:
        batcher = AdaptiveBatcher(model, max_batch_size=2, max_wait_ms=60_000)
        first = await busy_with_first(batcher, model, 1)
        tasks = [asyncio.create_task(batcher.submit(i)) for i in (2, 3, 4)]
        await settle()
        closing = asyncio.create_task(batcher.aclose())
        await settle()
        with pytest.raises(InvalidState, match="closed"):
            await batcher.submit(5)
        assert not closing.done()
        model.release()
        await asyncio.wait_for(closing, timeout=10)  # the fill window is not waited for
        assert first.result() == 10
        assert [task.result() for task in tasks] == [20, 30, 40]
        with pytest.raises(InvalidState):
            await batcher.submit(6)

    run(main)
    assert model.batches == [[1], [2, 3], [4]]


def test_on_batch_hears_every_model_call_and_its_errors_are_ignored() -> None:
    heard: list[tuple[int, float]] = []

    def broken(rows: int, seconds: float) -> None:
        raise RuntimeError("metrics are down")

    async def main() -> None:
        model = Model(sleep_s=0.001)
        async with AdaptiveBatcher(model, on_batch=lambda r, s: heard.append((r, s))) as b:
            await asyncio.gather(*(b.submit(i) for i in range(40)))
        assert len(heard) == len(model.batches)
        assert sum(rows for rows, _ in heard) == 40
        assert all(seconds >= 0.0 for _, seconds in heard)
        async with AdaptiveBatcher(Model(), on_batch=broken) as b:
            assert await asyncio.gather(*(b.submit(i) for i in range(10))) == [
                i * 10 for i in range(10)
            ]

    run(main)


def test_bad_settings_and_row_counts_are_refused_with_the_value() -> None:
    with pytest.raises(InvalidArgument, match="max_batch_size must be an int >= 1, got 0"):
        AdaptiveBatcher(Model(), max_batch_size=0)
    with pytest.raises(InvalidArgument, match="deadline_ms must be a number > 0"):
        AdaptiveBatcher(Model(), deadline_ms=-5)

    async def main() -> None:
        async with AdaptiveBatcher(Model(), rows_of=lambda item: -1) as batcher:
            with pytest.raises(InvalidArgument, match="rows_of returned -1 for a int"):
                await batcher.submit(1)

    run(main)


def test_a_batcher_refuses_a_second_event_loop() -> None:
    batcher = AdaptiveBatcher(Model())

    async def use() -> None:
        assert await batcher.submit(1) == 10

    run(use)
    with pytest.raises(InvalidState, match="one batcher per event loop"):
        run(use)


def test_cost_model_recovers_per_row_and_fixed_cost() -> None:
    cost = CostModel()
    for rows in [1, 64, 8, 32, 2, 50, 17] * 3:
        cost.observe(rows, 0.0005 * rows + 0.004)
    assert cost.per_row_s == pytest.approx(0.0005, rel=0.05)
    assert cost.fixed_s == pytest.approx(0.004, rel=0.05)
    assert cost.predict(10) == pytest.approx(0.009, rel=0.05)


def test_cost_model_stays_non_negative_and_reads_one_batch_size_as_fixed_cost() -> None:
    same_size = CostModel()
    for _ in range(5):
        same_size.observe(1, 0.02)
    assert same_size.per_row_s == 0.0
    assert same_size.fixed_s == pytest.approx(0.02)

    falling = CostModel()  # bigger batches faster: no negative per-row cost
    for rows, seconds in [(1, 0.05), (10, 0.04), (50, 0.01), (64, 0.001)]:
        falling.observe(rows, seconds)
    assert falling.per_row_s == 0.0
    assert falling.fixed_s > 0.0

    steep = CostModel()  # a line through below zero: fit through the origin
    for rows, seconds in [(10, 0.001), (20, 0.012), (30, 0.03)]:
        steep.observe(rows, seconds)
    assert steep.fixed_s == 0.0
    assert steep.per_row_s > 0.0
    with pytest.raises(InvalidArgument, match="-1 rows"):
        steep.observe(-1, 0.1)
