"""The metric buffer writes in the background, keeps points when a write fails, and retries."""

from __future__ import annotations

import time
from collections.abc import Sequence

import loopml
from loopml.core.entities import Metric
from loopml.tracking.buffer import MetricBuffer


def test_points_are_written_within_the_interval_without_an_explicit_flush(tmp_path) -> None:  # type: ignore[no-untyped-def]
    uri = f"sqlite:///{tmp_path / 'b.db'}"
    writer = loopml.Client(uri, artifact_uri=str(tmp_path / "a"))
    reader = loopml.Client(uri, artifact_uri=str(tmp_path / "a"))
    run = writer.create_run(capture_environment=False)
    writer.log_metric(run.run_id, "m", 1.0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not reader.store.get_run(run.run_id).metrics:
        time.sleep(0.05)
    waited = 5 - (deadline - time.monotonic())
    assert reader.store.get_run(run.run_id).metrics == {"m": 1.0}
    assert waited < 1.5  # flush_interval_s is 0.5 by default: written within about a second
    writer.close()
    reader.close()


def test_a_failed_write_keeps_the_points_and_the_next_flush_writes_them() -> None:
    written: list[tuple[str, list[Metric]]] = []
    fail = [True]

    def write(run_id: str, metrics: Sequence[Metric]) -> None:
        if fail[0]:
            raise OSError("disk full")
        written.append((run_id, list(metrics)))

    buffer = MetricBuffer(write, lambda ids, t: None, interval_s=60)
    buffer.add("r1", Metric("a", 1.0, 0, 1))
    buffer.add("r2", Metric("b", 2.0, 0, 1))
    try:
        buffer.flush()
    except OSError:
        pass
    else:
        raise AssertionError("flush should have raised")
    assert buffer.pending == 2
    fail[0] = False
    buffer.add("r1", Metric("a", 3.0, 1, 2))
    buffer.close()
    assert buffer.pending == 0
    assert written == [
        ("r1", [Metric("a", 1.0, 0, 1), Metric("a", 3.0, 1, 2)]),
        ("r2", [Metric("b", 2.0, 0, 1)]),
    ]


def test_background_thread_sends_heartbeats_for_tracked_runs() -> None:
    beats: list[list[str]] = []
    buffer = MetricBuffer(
        lambda r, m: None,
        lambda ids, t: beats.append(list(ids)),
        interval_s=0.02,
        heartbeat_interval_s=0.05,
    )
    buffer.track("r1")
    time.sleep(0.4)
    buffer.untrack("r1")
    buffer.close()
    assert ["r1"] in beats
