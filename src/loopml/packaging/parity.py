"""Parity between a model and its conversion: the same input, compared output by output.

Labels (predictions of a classifier, or any non-float output) must be exactly equal; float
outputs (probabilities, regression values) may differ by at most ``atol``, since a converted
model often computes in float32 where the original used float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MethodParity", "ParityReport", "compare_outputs"]


@dataclass(frozen=True)
class MethodParity:
    """One method on one data set: how far apart the two models' outputs are."""

    method: str
    data: str
    rows: int
    exact: bool  # compared for equality (labels) rather than within atol
    max_abs_diff: float  # for exact comparisons: 0.0, or 1.0 if any value differs
    mismatches: int  # values that differ (exact) or exceed atol

    @property
    def ok(self) -> bool:
        return self.mismatches == 0


@dataclass(frozen=True)
class ParityReport:
    """Every comparison made, and whether the conversion passed at ``atol``."""

    atol: float
    checks: tuple[MethodParity, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def max_abs_diff(self) -> float:
        """The largest difference of any float output (labels excluded)."""
        diffs = [c.max_abs_diff for c in self.checks if not c.exact]
        return max(diffs, default=0.0)

    def failures(self) -> list[MethodParity]:
        return [check for check in self.checks if not check.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "atol": self.atol,
            "max_abs_diff": self.max_abs_diff,
            "checks": [
                {
                    "method": c.method,
                    "data": c.data,
                    "rows": c.rows,
                    "comparison": "exact" if c.exact else "atol",
                    "max_abs_diff": c.max_abs_diff,
                    "mismatches": c.mismatches,
                    "ok": c.ok,
                }
                for c in self.checks
            ],
        }


def compare_outputs(
    expected: Any, actual: Any, *, method: str, data: str, atol: float, exact: bool
) -> MethodParity:
    """Compare two outputs of ``method`` on the data set named ``data``."""
    import numpy as np

    want = _as_array(expected)
    got = _as_array(actual)
    if want.ndim == 2 and want.shape[1] == 1 and got.ndim == 1:
        want = want[:, 0]
    if got.ndim == 2 and got.shape[1] == 1 and want.ndim == 1:
        got = got[:, 0]
    rows = int(want.shape[0]) if want.ndim else 1
    if want.shape != got.shape:
        return MethodParity(method, data, rows, exact, float("inf"), max(want.size, got.size))
    numeric = want.dtype.kind in "fc" or got.dtype.kind in "fc"
    if exact or not numeric:
        if numeric and want.dtype.kind in "biuf" and got.dtype.kind in "biuf":
            differs = want.astype(np.float64) != got.astype(np.float64)
        else:
            differs = want.astype(str) != got.astype(str)
        count = int(np.count_nonzero(differs))
        return MethodParity(method, data, rows, True, 1.0 if count else 0.0, count)
    left, right = want.astype(np.float64), got.astype(np.float64)
    nan_mismatch = np.isnan(left) != np.isnan(right)
    diff = np.where(nan_mismatch, np.inf, np.nan_to_num(np.abs(left - right), nan=0.0))
    largest = float(np.max(diff)) if diff.size else 0.0
    count = int(np.count_nonzero(diff > atol))
    return MethodParity(method, data, rows, False, largest, count)


def _as_array(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value)
