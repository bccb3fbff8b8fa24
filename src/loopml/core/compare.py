"""Side-by-side comparison of runs: which params and metrics differ."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loopml.core.entities import Run


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    kind: str  # "param" or "metric"
    key: str
    values: tuple[str | float | None, ...]  # one per run, None where the run lacks the key

    @property
    def differs(self) -> bool:
        present = [v for v in self.values if v is not None]
        if len(present) != len(self.values):
            return True
        first = present[0] if present else None
        return any(_differ(first, v) for v in present[1:])


@dataclass(frozen=True, slots=True)
class RunComparison:
    runs: tuple[Run, ...]
    rows: tuple[ComparisonRow, ...]

    @property
    def differing(self) -> tuple[ComparisonRow, ...]:
        return tuple(r for r in self.rows if r.differs)


def _differ(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return False  # both NaN
    return a != b


def compare(runs: Sequence[Run]) -> RunComparison:
    rows: list[ComparisonRow] = []
    for key in sorted({k for r in runs for k in r.params}):
        rows.append(ComparisonRow("param", key, tuple(r.params.get(key) for r in runs)))
    for key in sorted({k for r in runs for k in r.metrics}):
        rows.append(ComparisonRow("metric", key, tuple(r.metrics.get(key) for r in runs)))
    return RunComparison(tuple(runs), tuple(rows))
