"""Data drift: per-column tests, dataset drift, multiple-testing correction, multivariate tests.

``DriftDetector(...).fit(reference)`` learns, column by column, what its tests need (sorted
values, bin edges, category counts); ``score(current)`` then tests any number of windows without
scanning the reference again. ``detect_drift(reference, current)`` does both at once.

Bad data never raises: a column missing from the current data, an all-missing column, an empty
window or a type change gives a :class:`ColumnDrift` with ``drifted=False`` and a ``message``,
and a line in :attr:`DriftReport.warnings`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal, Self, TypeVar

import numpy as np
import pandas as pd

from loopml.errors import InvalidArgument, InvalidState
from loopml.monitoring._multivariate import DomainClassifierDrift, PCAReconstructionDrift
from loopml.monitoring._univariate import (
    PSI,
    ChiSquareTest,
    DriftTest,
    JensenShannonDistance,
    KSTest,
    Level,
    TestResult,
    WassersteinDistance,
    ZTest,
    distinct_sorted,
    floats,
    sorted_floats,
)

__all__ = [
    "PSI",
    "ChiSquareTest",
    "ColumnDrift",
    "DomainClassifierDrift",
    "DriftDetector",
    "DriftReport",
    "DriftTest",
    "JensenShannonDistance",
    "KSTest",
    "PCAReconstructionDrift",
    "TestResult",
    "WassersteinDistance",
    "ZTest",
    "adjust_p_values",
    "default_test",
    "detect_drift",
]

_T = TypeVar("_T")
_R = TypeVar("_R")

Correction = Literal["bonferroni", "holm", "fdr_bh"]
Multivariate = Literal["domain_classifier", "pca"]

#: References up to this many non-missing values get p-value tests, larger ones distances.
SMALL_REFERENCE: Final = 1000
#: Numerical columns with at most this many distinct values are tested as categories.
FEW_VALUES: Final = 5
#: Unseen categories listed per column (the most frequent first).
UNSEEN_LISTED: Final = 20
#: Below this many values in a window, columns are scored one after the other.
_PARALLEL_MIN_VALUES: Final = 200_000

_CORRECTIONS: Final = ("bonferroni", "holm", "fdr_bh")
_MULTIVARIATE: Final = ("domain_classifier", "pca")


def default_test(kind: str, n_reference: int, distinct: int | None = None) -> DriftTest:
    """The test a column gets unless one is given (Evidently's default rule).

    With at most 1000 non-missing reference values: KS for numerical columns, chi-square for
    categorical ones, the two-proportion z-test for binary ones and for columns with at most two
    distinct values; numerical columns with at most 5 distinct values are tested as categories
    (chi-square, or z with two values). Drift at p < 0.05.

    With more than 1000: Wasserstein distance / reference std for numerical columns (drift at
    >= 0.1), Jensen-Shannon distance (natural log, drift at >= 0.1) for categorical and binary
    columns and for numerical ones with at most 5 distinct values.

    Text and empty columns have no default test: InvalidArgument.
    """
    if kind not in ("numerical", "categorical", "binary"):
        raise InvalidArgument(
            f"no default drift test for a {kind!r} column; give one in tests= "
            "(default tests exist for 'numerical', 'categorical' and 'binary' columns)"
        )
    if n_reference < 0 or (distinct is not None and distinct < 0):
        raise InvalidArgument(
            f"n_reference and distinct must be >= 0, got {n_reference!r} and {distinct!r}"
        )
    few = distinct is not None and distinct <= FEW_VALUES
    as_categories = kind != "numerical" or few
    if n_reference > SMALL_REFERENCE:
        return JensenShannonDistance() if as_categories else WassersteinDistance()
    if not as_categories:
        return KSTest()
    if kind == "binary" or (distinct is not None and distinct <= 2):
        return ZTest()
    return ChiSquareTest()


def adjust_p_values(p_values: Sequence[float], method: Correction) -> list[float]:
    """P-values adjusted for testing many columns at once, in the input order.

    "bonferroni": p * m; "holm": Holm's step-down; "fdr_bh": Benjamini-Hochberg step-up (false
    discovery rate). All capped at 1; compare the adjusted values with the usual alpha.
    """
    if method not in _CORRECTIONS:
        raise InvalidArgument(
            f"unknown correction {method!r}; use one of {', '.join(_CORRECTIONS)} or None"
        )
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return []
    if method == "bonferroni":
        return [float(v) for v in np.minimum(p * m, 1.0)]
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        steps = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:
        steps = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(steps, 1.0)
    return [float(v) for v in adjusted]


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift result; ``message`` says why it could not be tested (then not drifted).

    ``p_value`` is the adjusted one when the detector applies a correction. ``statistic`` and
    ``p_value`` are None when the column was not tested. Missing rates and unseen categories
    are reported here but do not make a column drift: missing values are dropped before testing.
    """

    name: str
    kind: str
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool
    level: Level
    missing_rate_reference: float
    missing_rate_current: float
    unseen_categories: tuple[str, ...]
    n_reference: int
    n_current: int
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["unseen_categories"] = list(self.unseen_categories)
        return data


@dataclass(frozen=True)
class DriftReport:
    """Drift of every column, and of the dataset: drifted when ``share_drifted >= share_threshold``.

    ``share_drifted`` is over the columns that could be tested; the prediction column (if any)
    is reported in ``prediction`` and not counted.
    """

    columns: dict[str, ColumnDrift]
    share_drifted: float
    dataset_drifted: bool
    share_threshold: float
    n_reference: int
    n_current: int
    correction: str | None
    multivariate: TestResult | None
    prediction: ColumnDrift | None
    warnings: tuple[str, ...]

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
            "share_drifted": self.share_drifted,
            "dataset_drifted": self.dataset_drifted,
            "share_threshold": self.share_threshold,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "correction": self.correction,
            "multivariate": self.multivariate.to_dict() if self.multivariate else None,
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "warnings": list(self.warnings),
        }


def _group(series: pd.Series[Any]) -> str:
    """Coarse value type, to notice a column whose type changed between reference and current.

    Object columns are looked at: booleans with missing values are still "boolean".
    """
    kind = series.dtype.kind
    if series.dtype == np.dtype(object):
        kind = _OBJECT_KINDS.get(pd.api.types.infer_dtype(series, skipna=True), "O")
    if kind == "b":
        return "boolean"
    if kind in "iuf":
        return "number"
    if kind in "mM":
        return "time"
    return "other"


_OBJECT_KINDS: Final = {
    "boolean": "b",
    "integer": "i",
    "floating": "f",
    "mixed-integer-float": "f",
    "decimal": "f",
    "datetime64": "M",
    "datetime": "M",
    "timedelta64": "m",
    "timedelta": "m",
}


def _missing_rate(missing: int, rows: int) -> float:
    return missing / rows if rows else 0.0


@dataclass(frozen=True)
class _Column:
    """What the detector learned about one reference column."""

    name: str
    label: Any
    kind: str
    group: str
    numeric: bool
    test: DriftTest | None
    message: str
    missing_rate: float
    count: int
    categories: pd.Index | None

    def values(self, series: pd.Series[Any]) -> Any:
        """The non-missing values the column's test takes (floats for numbers)."""
        if self.numeric:
            return floats(series, f"column {self.name!r}")
        return series.dropna()


class DriftDetector:
    """Fit once on the reference, then score many windows against it.

    ``columns``: features to test (default: every reference column but ``prediction``);
    ``tests``: a test per column instead of :func:`default_test` (copied, never mutated);
    ``share``: dataset drift when at least this share of tested columns drifted;
    ``correction``: adjust the p-values of p-value tests ("bonferroni", "holm", "fdr_bh");
    ``multivariate``: also run a ``"domain_classifier"`` or ``"pca"`` test on all features;
    ``prediction``: a model output column, tested and reported apart in ``report.prediction``.
    """

    def __init__(
        self,
        *,
        columns: Sequence[str] | None = None,
        tests: Mapping[str, DriftTest] | None = None,
        share: float = 0.5,
        correction: Correction | None = None,
        multivariate: Multivariate | None = None,
        prediction: str | None = None,
    ) -> None:
        self.columns = columns
        self.tests = tests
        self.share = share
        self.correction = correction
        self.multivariate = multivariate
        self.prediction = prediction

    def _validate(self, reference: pd.DataFrame) -> list[Any]:
        if not isinstance(reference, pd.DataFrame):
            raise InvalidArgument(
                f"fit needs the reference as a pandas DataFrame, got {type(reference).__name__}"
            )
        if not 0.0 < self.share <= 1.0:
            raise InvalidArgument(f"share must be in (0, 1], got {self.share!r}")
        if self.correction is not None and self.correction not in _CORRECTIONS:
            raise InvalidArgument(
                f"unknown correction {self.correction!r}; use one of {', '.join(_CORRECTIONS)}"
            )
        if self.multivariate is not None and self.multivariate not in _MULTIVARIATE:
            raise InvalidArgument(
                f"unknown multivariate test {self.multivariate!r}; use one of "
                f"{', '.join(_MULTIVARIATE)}"
            )
        if reference.columns.has_duplicates:
            duplicated = sorted({str(c) for c in reference.columns[reference.columns.duplicated()]})
            raise InvalidArgument(f"reference has duplicated columns: {', '.join(duplicated)}")
        by_name = {str(label): label for label in reference.columns}
        wanted = (
            [str(c) for c in reference.columns if str(c) != self.prediction]
            if self.columns is None
            else [str(c) for c in self.columns if str(c) != self.prediction]
        )
        absent = [c for c in wanted if c not in by_name]
        if self.prediction is not None and self.prediction not in by_name:
            absent.append(self.prediction)
        if absent:
            raise InvalidArgument(
                f"column(s) {', '.join(map(repr, absent))} not in the reference; it has "
                f"{', '.join(map(repr, list(by_name)[:20]))}"
            )
        for name, test in (self.tests or {}).items():
            if name not in wanted and name != self.prediction:
                raise InvalidArgument(
                    f"tests= names column {name!r}, which is not tested; tested columns: "
                    f"{', '.join(map(repr, wanted[:20]))}"
                )
            if not isinstance(test, DriftTest) or test.kind == "multivariate":
                raise InvalidArgument(
                    f"tests[{name!r}] must be a univariate DriftTest (KSTest, ChiSquareTest, ZTest,"
                    f" WassersteinDistance, JensenShannonDistance, PSI), got {test!r}"
                )
        return [by_name[c] for c in wanted]

    def fit(self, reference: pd.DataFrame) -> Self:
        """Learn each column's kind and fit its test; validates every option."""
        labels = self._validate(reference)
        pairs = [(reference[label], label) for label in labels]
        fitted = _map(lambda pair: self._fit_column(*pair), pairs, len(reference))
        self.columns_ = {column.name: column for column in fitted}
        self.prediction_ = (
            None
            if self.prediction is None
            else self._fit_column(reference[self.prediction], self.prediction)
        )
        self.n_reference_ = len(reference)
        self.multivariate_: DriftTest | None = None
        if self.multivariate is not None:
            test: DriftTest = (
                DomainClassifierDrift()
                if self.multivariate == "domain_classifier"
                else PCAReconstructionDrift()
            )
            self.multivariate_ = test.fit(reference[labels])
        return self

    def _fit_column(self, series: pd.Series[Any], label: Any) -> _Column:
        name = str(label)
        group = _group(series)
        rows = len(series)
        numeric = group in ("number", "time")
        values: Any
        distinct: int | None
        if numeric:
            values = sorted_floats(floats(series, f"column {name!r}"))
            count = len(values)
            distinct = distinct_sorted(values)
            kind = "empty" if not count else "binary" if distinct == 2 else "numerical"
        else:
            from loopml.monitoring.profile import infer_kind

            values = series.dropna()
            count = len(values)
            kind = infer_kind(series)
            distinct = int(values.nunique()) if kind in ("categorical", "binary") else None
        missing_rate = _missing_rate(rows - count, rows)
        given = (self.tests or {}).get(name)
        message = ""
        test: DriftTest | None = None
        if kind == "empty" or not count:
            message = "no non-missing value in the reference: not tested"
        elif given is not None:
            if given.kind == "numerical" and not numeric:
                raise InvalidArgument(
                    f"{type(given).__name__} needs numbers but column {name!r} holds {kind} "
                    f"values of dtype {series.dtype}; use ChiSquareTest, JensenShannonDistance "
                    "or PSI"
                )
            test = given.clone().fit(values)
        elif kind == "text":
            message = "text column: no default test (give one in tests=)"
        else:
            test = default_test(kind, count, distinct).fit(values)
        categories = None
        if kind in ("categorical", "binary") and test is not None:
            categories = pd.Index(pd.unique(values))
        return _Column(
            name, label, kind, group, numeric, test, message, missing_rate, count, categories
        )

    def score(self, current: pd.DataFrame) -> DriftReport:
        """Test every fitted column of ``current``; never raises on bad data (see ``message``)."""
        if not hasattr(self, "columns_"):
            raise InvalidState("DriftDetector is not fitted: call fit(reference) first")
        if not isinstance(current, pd.DataFrame):
            raise InvalidArgument(
                f"score needs the current data as a pandas DataFrame, got {type(current).__name__}"
            )
        fitted = list(self.columns_.values())
        rows = len(current)
        pairs = [(column, _lookup(current, column.label)) for column in fitted]
        scored = _map(lambda pair: self._score_column(*pair, rows), pairs, rows)
        results = dict(zip(self.columns_, scored, strict=True))
        if self.correction is not None:
            results = self._corrected(results, self.correction)
        warnings = [f"column {c.name!r}: {c.message}" for c in results.values() if c.message]
        if not len(current):
            warnings.insert(0, "the current data has no rows: nothing was tested")
        prediction = None
        if self.prediction_ is not None:
            prediction = self._score_column(
                self.prediction_, _lookup(current, self.prediction_.label), rows
            )
            if prediction.message:
                warnings.append(f"prediction column {prediction.name!r}: {prediction.message}")
        tested = [c for c in results.values() if not c.message]
        share = sum(c.drifted for c in tested) / len(tested) if tested else 0.0
        if not tested and len(current):
            warnings.append("no column could be tested: dataset drift is not assessed")
        multivariate = None
        if self.multivariate_ is not None:
            try:
                present = [c.label for c in fitted if c.label in current.columns]
                multivariate = self.multivariate_.score(current[present])
            except (InvalidArgument, ValueError, TypeError) as exc:
                reason = exc.message if isinstance(exc, InvalidArgument) else str(exc)
                warnings.append(f"multivariate test {self.multivariate!r} not run: {reason}")
        return DriftReport(
            columns=results,
            share_drifted=share,
            dataset_drifted=bool(tested) and share >= self.share,
            share_threshold=self.share,
            n_reference=self.n_reference_,
            n_current=len(current),
            correction=self.correction,
            multivariate=multivariate,
            prediction=prediction,
            warnings=tuple(warnings),
        )

    def _score_column(
        self, column: _Column, series: pd.Series[Any] | str, rows: int
    ) -> ColumnDrift:
        def untested(message: str, missing_rate: float = 0.0, count: int = 0) -> ColumnDrift:
            return ColumnDrift(
                name=column.name,
                kind=column.kind,
                method=column.test.method if column.test is not None else "",
                statistic=None,
                p_value=None,
                threshold=None,
                drifted=False,
                level="ok",
                missing_rate_reference=column.missing_rate,
                missing_rate_current=missing_rate,
                unseen_categories=(),
                n_reference=column.count,
                n_current=count,
                message=message,
            )

        if isinstance(series, str):
            return untested(series, 1.0 if rows else 0.0)
        if column.test is None:
            return untested(column.message, _missing_rate(int(series.isna().sum()), rows))
        if not rows:
            return untested("no rows in the current data")
        group = _group(series)
        try:
            values = column.values(series)
        except InvalidArgument:
            values = None
        count = len(values) if values is not None else int(series.notna().sum())
        missing_rate = _missing_rate(rows - count, rows)
        if not count:
            return untested("no non-missing value in the current data", missing_rate)
        if group != column.group or values is None:
            return untested(
                f"type changed: {column.group} ({column.kind}) in the reference, "
                f"{group} (dtype {series.dtype}) in the current data",
                missing_rate,
                count,
            )
        try:
            result = column.test.score(values)
        except (InvalidArgument, ValueError, TypeError) as exc:
            reason = exc.message if isinstance(exc, InvalidArgument) else str(exc)
            return untested(f"could not be tested: {reason}", missing_rate, count)
        unseen: tuple[str, ...] = ()
        if column.categories is not None:
            seen = pd.Series(values).value_counts()
            fresh = seen[column.categories.get_indexer(seen.index) < 0]
            unseen = tuple(str(v) for v in fresh.index[:UNSEEN_LISTED])
        return ColumnDrift(
            name=column.name,
            kind=column.kind,
            method=result.method,
            statistic=result.statistic,
            p_value=result.p_value,
            threshold=result.threshold,
            drifted=result.drifted,
            level=result.level,
            missing_rate_reference=column.missing_rate,
            missing_rate_current=missing_rate,
            unseen_categories=unseen,
            n_reference=column.count,
            n_current=count,
        )

    @staticmethod
    def _corrected(results: dict[str, ColumnDrift], method: Correction) -> dict[str, ColumnDrift]:
        """Replace raw p-values by adjusted ones (over the tested p-value columns)."""
        names = [n for n, c in results.items() if c.p_value is not None and not c.message]
        adjusted = adjust_p_values([results[n].p_value or 0.0 for n in names], method)
        fixed = dict(results)
        for name, p_value in zip(names, adjusted, strict=True):
            column = results[name]
            assert column.threshold is not None
            drifted = p_value < column.threshold
            level: Level = "alert" if drifted else "ok"
            fixed[name] = replace(column, p_value=p_value, drifted=drifted, level=level)
        return fixed


def _lookup(current: pd.DataFrame, label: Any) -> pd.Series[Any] | str:
    """The column of ``current``, or why there is none."""
    if label not in current.columns:
        return "missing from the current data"
    series = current[label]
    if not isinstance(series, pd.Series):
        return "appears more than once in the current data"
    return series


def _map(work: Callable[[_T], _R], items: list[_T], rows: int) -> list[_R]:
    """``work`` on each item, on several threads for large tables (NumPy releases the GIL)."""
    workers = min(len(items), os.cpu_count() or 1, 8)
    if workers < 2 or rows * len(items) < _PARALLEL_MIN_VALUES:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, items))


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    tests: Mapping[str, DriftTest] | None = None,
    share: float = 0.5,
    correction: Correction | None = None,
    multivariate: Multivariate | None = None,
    prediction: str | None = None,
) -> DriftReport:
    """``DriftDetector(...).fit(reference).score(current)`` in one call."""
    detector = DriftDetector(
        columns=columns,
        tests=tests,
        share=share,
        correction=correction,
        multivariate=multivariate,
        prediction=prediction,
    )
    return detector.fit(reference).score(current)
