"""Packed metric chunks keep every point exactly and history keeps write order for ties."""

from __future__ import annotations

import math

from loopml.core import series
from loopml.core.entities import Metric


def test_encode_decode_is_bit_exact_for_special_values() -> None:
    values = [float("nan"), float("inf"), float("-inf"), -0.0, 5e-324, 1.7976931348623157e308]
    steps = list(range(len(values)))
    stamps = [2**62, -1, 0, 1, 2, 3]
    back = series.decode("k", *series.encode(steps, values, stamps))
    assert [m.step for m in back] == steps
    assert [m.timestamp for m in back] == stamps
    assert math.isnan(back[0].value)
    assert [m.value for m in back[1:]] == values[1:]
    assert math.copysign(1.0, back[3].value) == -1.0


def test_history_sorts_by_step_then_timestamp_keeping_write_order_for_ties() -> None:
    first = series.encode([2, 1], [20.0, 10.0], [5, 5])
    second = series.encode([1, 1], [11.0, 12.0], [5, 4])
    assert series.history("k", [first, second]) == [
        Metric("k", 12.0, 1, 4),
        Metric("k", 10.0, 1, 5),
        Metric("k", 11.0, 1, 5),
        Metric("k", 20.0, 2, 5),
    ]
