"""What a validation returns: one :class:`RuleResult` per expectation, gathered in a
:class:`ValidationReport` whose :meth:`~ValidationReport.raise_for_failures` stops a pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loopml.errors import InvalidArgument

__all__ = ["RuleResult", "ValidationReport"]


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one expectation: ``failing_rows`` holds up to 20 index labels."""

    rule: str
    column: str | None
    passed: bool
    failing_count: int
    failing_rows: tuple[Any, ...]
    sample_values: tuple[Any, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "column": self.column,
            "passed": self.passed,
            "failing_count": self.failing_count,
            "failing_rows": list(self.failing_rows),
            "sample_values": list(self.sample_values),
            "message": self.message,
        }


@dataclass(frozen=True)
class ValidationReport:
    """The results of every expectation run on a table of ``rows`` rows."""

    rows: int
    results: tuple[RuleResult, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> tuple[RuleResult, ...]:
        return tuple(result for result in self.results if not result.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": self.rows,
            "results": [result.to_dict() for result in self.results],
        }

    def raise_for_failures(self) -> None:
        """Raise :class:`InvalidArgument` listing every broken rule and its rows, if any."""
        failures = self.failures
        if not failures:
            return
        lines = "\n".join(f"  - {result.message}" for result in failures)
        raise InvalidArgument(
            f"data validation failed: {len(failures)} of {len(self.results)} rules broken\n{lines}",
            failures=[result.to_dict() for result in failures],
        )
