"""Univariate drift tests: each compares one column of current data with its reference.

Every test follows the scikit-learn contract: ``__init__`` stores parameters, ``fit`` learns what
scoring needs (sorted values, bin edges, category counts) and ``score`` compares a current sample
with that state, never with the reference itself. Missing values (NaN, None, ±inf for numbers)
are dropped before testing.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal, Self, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from loopml.errors import InvalidArgument, InvalidState

Level: TypeAlias = Literal["ok", "warn", "alert"]
Values: TypeAlias = "pd.Series[Any] | NDArray[Any] | Sequence[Any]"
FloatArray: TypeAlias = NDArray[np.float64]
IntArray: TypeAlias = NDArray[np.int64]

#: Largest sample size for which the KS p-value is exact (as ``scipy.stats.ks_2samp``).
KS_EXACT_MAX_N = 10_000
#: Floor of the reference standard deviation that scales the Wasserstein distance.
MIN_SCALE = 0.001


@dataclass(frozen=True)
class TestResult:
    """Outcome of one drift test. ``level`` is "alert" when drifted unless the test says "warn"."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    level: Level = "ok"

    def __post_init__(self) -> None:
        if self.drifted and self.level == "ok":
            object.__setattr__(self, "level", "alert")
        elif not self.drifted and self.level != "ok":
            raise InvalidArgument(
                f"level {self.level!r} needs drifted=True; a result that did not drift is 'ok'"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DriftTest:
    """Base of every drift test; subclasses set ``kind`` and ``method`` and implement fit/score.

    ``kind`` says what a test accepts: "numerical" (numbers), "categorical" (any values, compared
    as categories), "any" (numbers are binned, other values compared as categories) or
    "multivariate" (a whole DataFrame).
    """

    kind: ClassVar[str] = "any"
    method: ClassVar[str] = "drift_test"

    def fit(self, reference: Any) -> Self:
        raise NotImplementedError

    def score(self, current: Any) -> TestResult:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, by name (scikit-learn style)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def clone(self) -> Self:
        """An unfitted copy with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def _fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise InvalidState(
                f"{type(self).__name__} is not fitted: call fit(reference) before score(current)"
            )


def floats(values: Values, owner: str) -> FloatArray:
    """Finite values as a 1-D float64 array (no copy when nothing has to be dropped).

    Datetimes become seconds since the epoch (UTC), durations seconds.
    """
    try:
        if isinstance(values, pd.Series):
            if values.dtype.kind == "M":
                if getattr(values.dtype, "tz", None) is not None:
                    values = values.dt.tz_convert("UTC").dt.tz_localize(None)
                values = (values - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
            elif values.dtype.kind == "m":
                values = values / pd.Timedelta(seconds=1)
            array: FloatArray = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        dtype = getattr(values, "dtype", type(values).__name__)
        raise InvalidArgument(
            f"{owner} needs numerical values, got dtype {dtype} ({exc}); "
            "use a categorical test (ChiSquareTest, JensenShannonDistance, PSI) instead"
        ) from exc
    if array.ndim != 1:
        raise InvalidArgument(f"{owner} needs one column of values, got shape {array.shape}")
    finite = np.isfinite(array)
    return array if finite.all() else array[finite]


def nonempty(array: FloatArray, owner: str, side: str) -> FloatArray:
    if not len(array):
        raise InvalidArgument(f"{owner} got no non-missing {side} values; it needs at least one")
    return array


def _series(values: Values) -> pd.Series[Any]:
    return values if isinstance(values, pd.Series) else pd.Series(values)


def is_numeric(values: Values) -> bool:
    """True for int, float and datetime values (bool and everything else are categories)."""
    dtype = values.dtype if isinstance(values, pd.Series) else np.asarray(values).dtype
    return bool(dtype.kind in "iufmM")


class Frequencies:
    """Reference counts per category, and current counts aligned to them."""

    def __init__(self, values: Values, owner: str) -> None:
        counts = _series(values).value_counts(sort=False, dropna=True)
        if not len(counts):
            raise InvalidArgument(f"{owner} got no non-missing reference values; it needs one")
        self.index = counts.index
        self.counts: IntArray = counts.to_numpy(dtype=np.int64)

    def align(self, values: Values) -> tuple[IntArray, int]:
        """Current counts per reference category, and the count of unseen values (pooled)."""
        counts = _series(values).value_counts(sort=False, dropna=True)
        position = self.index.get_indexer(counts.index)
        found = position >= 0
        aligned = np.zeros(len(self.index), dtype=np.int64)
        raw = counts.to_numpy(dtype=np.int64)
        aligned[position[found]] = raw[found]
        return aligned, int(raw[~found].sum())


def histogram(values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts below ``edges[0]``, in ``[e_i, e_i+1)`` (last bin closed) and above ``edges[-1]``."""
    cells = np.searchsorted(edges, values, side="right")
    counts = np.bincount(cells, minlength=len(edges) + 1).astype(np.int64)
    at_top = int(np.count_nonzero(values == edges[-1]))
    counts[-1] -= at_top
    counts[-2] += at_top
    return counts


def histogram_sorted(values: FloatArray, edges: FloatArray) -> IntArray:
    """:func:`histogram` of sorted values, by binary search of the edges only."""
    starts = np.searchsorted(values, edges, side="left")
    top = int(np.searchsorted(values, edges[-1], side="right"))
    inner = np.diff(starts)
    inner[-1] += top - int(starts[-1])
    return np.concatenate([[starts[0]], inner, [len(values) - top]]).astype(np.int64)


def sorted_floats(values: FloatArray) -> FloatArray:
    """The values sorted, in an array of their own (checked first: no sort when sorted)."""
    if len(values) < 2 or bool(np.all(values[1:] >= values[:-1])):
        return values if values.base is None and values.flags.c_contiguous else values.copy()
    return np.sort(values)


def distinct_sorted(values: FloatArray) -> int:
    return int(np.count_nonzero(values[1:] != values[:-1])) + 1 if len(values) else 0


class _Cells:
    """The cells a binned test compares: fixed numeric bins or reference categories.

    Numbers with more distinct reference values than ``bins`` are binned (edges from the
    reference, plus open cells below and above); anything else is compared value by value,
    with current values unseen in the reference pooled into one extra cell.
    """

    def __init__(
        self, reference: Values, *, bins: int, rule: Literal["width", "quantile"], owner: str
    ):
        self.edges: FloatArray | None = None
        self.frequencies: Frequencies | None = None
        self.numeric = is_numeric(reference)
        if self.numeric:
            values = sorted_floats(nonempty(floats(reference, owner), owner, "reference"))
            if distinct_sorted(values) > bins:
                if rule == "width":
                    edges = np.linspace(values[0], values[-1], bins + 1)
                else:
                    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
                self.edges = edges
                self.reference: IntArray = histogram_sorted(values, edges)
                return
            reference = pd.Series(values)
        self.frequencies = Frequencies(reference, owner)
        self.reference = np.append(self.frequencies.counts, 0)

    def current(self, current: Values, owner: str) -> IntArray:
        """Current counts on the same cells as ``self.reference``."""
        if self.edges is not None:
            values = nonempty(floats(current, owner), owner, "current")
            return histogram(values, self.edges)
        assert self.frequencies is not None
        if self.numeric:
            values = nonempty(floats(current, owner), owner, "current")
            current = pd.Series(values)
        aligned, unseen = self.frequencies.align(current)
        if not aligned.sum() + unseen:
            raise InvalidArgument(f"{owner} got no non-missing current values; it needs one")
        return np.append(aligned, unseen)


def _check_alpha(alpha: float, owner: str) -> None:
    if not 0.0 < alpha < 1.0:
        raise InvalidArgument(f"{owner}: alpha must be between 0 and 1 (exclusive), got {alpha!r}")


def _check_positive(value: float, name: str, owner: str) -> None:
    if not value > 0:
        raise InvalidArgument(f"{owner}: {name} must be > 0, got {value!r}")


def _check_bins(bins: int, owner: str) -> None:
    if not isinstance(bins, int) or bins < 1:
        raise InvalidArgument(f"{owner}: bins must be an int >= 1, got {bins!r}")


class KSTest(DriftTest):
    """Two-sample Kolmogorov-Smirnov test; drift when the p-value is below ``alpha``.

    The p-value is exact up to 10,000 values per side and Smirnov's asymptotic one above,
    as in ``scipy.stats.ks_2samp(method="auto")``.
    """

    kind = "numerical"
    method = "ks"

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = alpha

    def fit(self, reference: Values) -> Self:
        _check_alpha(self.alpha, "KSTest")
        values = nonempty(floats(reference, "KSTest"), "KSTest", "reference")
        self.reference_ = sorted_floats(values)
        return self

    def score(self, current: Values) -> TestResult:
        self._fitted("reference_")
        values = nonempty(floats(current, "KSTest"), "KSTest", "current")
        reference = self.reference_
        n, m = len(reference), len(values)
        if max(n, m) <= KS_EXACT_MAX_N:
            from scipy.stats import ks_2samp  # type: ignore[import-untyped, unused-ignore]

            outcome = ks_2samp(reference, values, method="auto")
            statistic, p_value = float(outcome.statistic), float(outcome.pvalue)
        else:
            from scipy.stats import kstwo  # type: ignore[import-untyped, unused-ignore]

            statistic = ks_statistic(reference, np.sort(values))
            big, small = max(n, m), min(n, m)
            effective = float(np.round(big * small / (big + small)))
            p_value = float(np.clip(kstwo.sf(statistic, effective), 0.0, 1.0))
        return TestResult(self.method, statistic, p_value, self.alpha, p_value < self.alpha)


def ks_statistic(a: FloatArray, b: FloatArray) -> float:
    """Largest gap between the empirical CDFs of two sorted samples."""
    n, m = len(a), len(b)
    a_ends = np.flatnonzero(np.append(a[1:] != a[:-1], True))
    b_ends = np.flatnonzero(np.append(b[1:] != b[:-1], True))
    at_a = np.abs((a_ends + 1) / n - np.searchsorted(b, a[a_ends], side="right") / m)
    at_b = np.abs(np.searchsorted(a, b[b_ends], side="right") / n - (b_ends + 1) / m)
    return float(max(at_a.max(), at_b.max()))


def wasserstein_sorted(a: FloatArray, b: FloatArray) -> float:
    """W1 distance between two sorted samples: the integral of |F_a^-1(t) - F_b^-1(t)| dt.

    The quantile functions are step functions on the grid {i/n} and {j/m}; on the common grid
    (integers ``u`` on the scale 1/(n*m)) both are constant between breakpoints, so the integral
    is a weighted sum with no search.
    """
    n, m = len(a), len(b)
    if n == m:
        return float(np.abs(a - b).mean())
    size = n + m
    b_steps = np.arange(1, m + 1, dtype=np.int64) * n
    b_slots = np.arange(m, dtype=np.int64) + b_steps // m
    grid = np.empty(size, dtype=np.int64)
    grid[b_slots] = b_steps
    in_a = np.ones(size, dtype=bool)
    in_a[b_slots] = False
    grid[in_a] = np.arange(1, n + 1, dtype=np.int64) * m
    del in_a, b_steps, b_slots
    widths = np.diff(grid, prepend=0).astype(np.float64)
    gaps = np.abs(a[(grid + (m - 1)) // m - 1] - b[(grid + (n - 1)) // n - 1])
    return float(np.dot(widths, gaps) / (float(n) * float(m)))


class ChiSquareTest(DriftTest):
    """Chi-square test of homogeneity on a 2 x k table (reference and current counts).

    Values are categories; current values unseen in the reference are pooled into one cell,
    cells empty on both sides are dropped. Equals ``scipy.stats.chi2_contingency(table,
    correction=False)``. Drift when the p-value is below ``alpha``.
    """

    kind = "categorical"
    method = "chisquare"

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = alpha

    def fit(self, reference: Values) -> Self:
        _check_alpha(self.alpha, "ChiSquareTest")
        self.frequencies_ = Frequencies(reference, "ChiSquareTest")
        return self

    def score(self, current: Values) -> TestResult:
        self._fitted("frequencies_")
        aligned, unseen = self.frequencies_.align(current)
        if not aligned.sum() + unseen:
            raise InvalidArgument("ChiSquareTest got no non-missing current values; it needs one")
        table = np.array(
            [np.append(self.frequencies_.counts, 0), np.append(aligned, unseen)], dtype=np.float64
        )
        table = table[:, table.sum(axis=0) > 0]
        statistic, dof = chi_square(table)
        if dof < 1:
            return TestResult(self.method, 0.0, 1.0, self.alpha, False)
        from scipy.special import chdtrc  # type: ignore[import-untyped, unused-ignore]

        p_value = float(chdtrc(dof, statistic))
        return TestResult(self.method, statistic, p_value, self.alpha, p_value < self.alpha)


def chi_square(table: FloatArray) -> tuple[float, int]:
    """Pearson's statistic of a contingency table with non-empty margins, and its dof."""
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    dof = (table.shape[0] - 1) * (table.shape[1] - 1)
    return float(((table - expected) ** 2 / expected).sum()), dof


class ZTest(DriftTest):
    """Two-proportion z-test (pooled variance) for a column with at most two reference values.

    The tested proportion is the share of the larger reference value (True, 1, or the last in
    string order for other values); drift when
    the two-sided p-value ``erfc(|z| / sqrt(2))`` is below ``alpha``.
    """

    kind = "categorical"
    method = "z"

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = alpha

    def fit(self, reference: Values) -> Self:
        _check_alpha(self.alpha, "ZTest")
        frequencies = Frequencies(reference, "ZTest")
        if len(frequencies.index) > 2:
            shown = [str(v) for v in frequencies.index[:5]]
            raise InvalidArgument(
                f"ZTest needs at most 2 distinct reference values, got {len(frequencies.index)} "
                f"({', '.join(shown)}, ...); use ChiSquareTest for more categories"
            )
        keys = list(frequencies.index)
        numeric = all(isinstance(k, int | float | np.number) for k in keys)
        last = max(range(len(keys)), key=(lambda i: keys[i]) if numeric else lambda i: str(keys[i]))
        self.frequencies_ = frequencies
        self.positive_ = keys[last]
        self.reference_hits_ = int(frequencies.counts[last])
        self.reference_size_ = int(frequencies.counts.sum())
        return self

    def score(self, current: Values) -> TestResult:
        self._fitted("frequencies_")
        aligned, unseen = self.frequencies_.align(current)
        size = int(aligned.sum()) + unseen
        if not size:
            raise InvalidArgument("ZTest got no non-missing current values; it needs one")
        hits = int(aligned[self.frequencies_.index.get_loc(self.positive_)])
        z = z_statistic(self.reference_hits_, self.reference_size_, hits, size)
        p_value = math.erfc(abs(z) / math.sqrt(2.0))
        return TestResult(self.method, z, p_value, self.alpha, p_value < self.alpha)


def z_statistic(hits_a: int, size_a: int, hits_b: int, size_b: int) -> float:
    """(p_a - p_b) / sqrt(P (1 - P) (1/n_a + 1/n_b)) with the pooled P; 0 when P is 0 or 1."""
    pooled = (hits_a + hits_b) / (size_a + size_b)
    variance = pooled * (1.0 - pooled) * (1.0 / size_a + 1.0 / size_b)
    if variance <= 0.0:
        return 0.0
    return (hits_a / size_a - hits_b / size_b) / math.sqrt(variance)


class WassersteinDistance(DriftTest):
    """Wasserstein-1 distance divided by the reference standard deviation (ddof=0, floor 0.001).

    Drift when the normed distance is >= ``threshold``. Exact, equal to
    ``scipy.stats.wasserstein_distance(reference, current) / std(reference)``, for references
    of up to ``sketch_above`` values; a larger reference is kept as ``sketch_points`` evenly
    spaced order statistics (its quantile function on a fine grid), which keeps the fitted
    detector small (80 KB a column instead of 8 MB a million rows) and moves the distance by
    about 1/``sketch_points`` of the reference's spread, far below any threshold.
    """

    kind = "numerical"
    method = "wasserstein"

    def __init__(
        self, threshold: float = 0.1, *, sketch_above: int = 100_000, sketch_points: int = 10_000
    ) -> None:
        self.threshold = threshold
        self.sketch_above = sketch_above
        self.sketch_points = sketch_points

    def fit(self, reference: Values) -> Self:
        _check_positive(self.threshold, "threshold", "WassersteinDistance")
        if self.sketch_points < 2 or self.sketch_above < self.sketch_points:
            raise InvalidArgument(
                f"WassersteinDistance: sketch_points ({self.sketch_points}) must be at least 2 "
                f"and at most sketch_above ({self.sketch_above})"
            )
        values = nonempty(
            floats(reference, "WassersteinDistance"), "WassersteinDistance", "reference"
        )
        ordered = sorted_floats(values)
        self.scale_ = max(float(np.std(values)), MIN_SCALE)
        if len(ordered) > self.sketch_above:
            ranks = np.linspace(0, len(ordered) - 1, self.sketch_points).round().astype(np.int64)
            ordered = ordered[ranks]
        self.reference_ = ordered
        return self

    def score(self, current: Values) -> TestResult:
        self._fitted("reference_")
        values = nonempty(floats(current, "WassersteinDistance"), "WassersteinDistance", "current")
        distance = wasserstein_sorted(self.reference_, np.sort(values)) / self.scale_
        return TestResult(self.method, distance, None, self.threshold, distance >= self.threshold)


class JensenShannonDistance(DriftTest):
    """Jensen-Shannon distance between reference and current frequencies (log base ``base``).

    Numbers with more than ``bins`` distinct reference values use ``bins`` equal-width bins over
    the reference range plus an open cell on each side; other values are compared per value,
    unseen ones pooled. Empty cells get 1e-4 before normalising. Distance in [0, 1] for base 2,
    [0, sqrt(ln 2)] ~ [0, 0.833] for the default natural log; drift when >= ``threshold``.
    """

    kind = "any"
    method = "jensenshannon"

    def __init__(self, threshold: float = 0.1, base: float = math.e, bins: int = 20) -> None:
        self.threshold = threshold
        self.base = base
        self.bins = bins

    def fit(self, reference: Values) -> Self:
        _check_positive(self.threshold, "threshold", "JensenShannonDistance")
        if not self.base > 1:
            raise InvalidArgument(f"JensenShannonDistance: base must be > 1, got {self.base!r}")
        _check_bins(self.bins, "JensenShannonDistance")
        self.cells_ = _Cells(reference, bins=self.bins, rule="width", owner="JensenShannonDistance")
        return self

    def score(self, current: Values) -> TestResult:
        self._fitted("cells_")
        counts = self.cells_.current(current, "JensenShannonDistance")
        distance = jensen_shannon(
            filled(self.cells_.reference, EMPTY_SHARE), filled(counts, EMPTY_SHARE), self.base
        )
        return TestResult(self.method, distance, None, self.threshold, distance >= self.threshold)


#: Share given to cells with no values, as Evidently does for PSI and Jensen-Shannon.
EMPTY_SHARE = 1e-4


def filled(counts: IntArray, eps: float) -> FloatArray:
    """Shares of each cell, with ``eps`` in place of zero."""
    shares = counts / counts.sum()
    return np.where(shares == 0, eps, shares)


def jensen_shannon(p: FloatArray, q: FloatArray, base: float) -> float:
    """sqrt of the mean KL divergence of p and q from their midpoint, in log ``base``."""
    p = p / p.sum()
    q = q / q.sum()
    mid = (p + q) / 2.0
    divergence = float(np.sum(p * np.log(p / mid)) + np.sum(q * np.log(q / mid)))
    return math.sqrt(max(divergence, 0.0) / (2.0 * math.log(base)))


class PSI(DriftTest):
    """Population stability index: sum((q - p) * ln(q / p)) over cells, empty cells at ``eps``.

    Numbers with more than ``bins`` distinct reference values use reference quantile bins (open
    below the minimum and above the maximum); other values are compared per value. Bands:
    below ``warn`` ok; ``warn`` to ``alert`` moderate shift (level "warn"); from ``alert`` on a
    significant shift (level "alert"). Both warn and alert count as drifted.
    """

    kind = "any"
    method = "psi"

    def __init__(
        self, bins: int = 10, warn: float = 0.1, alert: float = 0.25, eps: float = 1e-4
    ) -> None:
        self.bins = bins
        self.warn = warn
        self.alert = alert
        self.eps = eps

    def fit(self, reference: Values) -> Self:
        _check_bins(self.bins, "PSI")
        _check_positive(self.eps, "eps", "PSI")
        if not 0 < self.warn <= self.alert:
            raise InvalidArgument(
                f"PSI: need 0 < warn <= alert, got warn={self.warn!r}, alert={self.alert!r}"
            )
        self.cells_ = _Cells(reference, bins=self.bins, rule="quantile", owner="PSI")
        return self

    def score(self, current: Values) -> TestResult:
        self._fitted("cells_")
        p = filled(self.cells_.reference, self.eps)
        q = filled(self.cells_.current(current, "PSI"), self.eps)
        value = float(np.sum((q - p) * np.log(q / p)))
        level: Level = "alert" if value >= self.alert else "warn" if value >= self.warn else "ok"
        return TestResult(self.method, value, None, self.warn, level != "ok", level)
