"""Dataset profiles: per-column statistics of a table, small enough to store, and mergeable.

For each column a profile keeps its kind, counts, moments, quantiles, a histogram on fixed
bin edges and category counts. Profiles of windows built with ``edges_from=reference`` take
the reference's kinds and bin edges, so they compare with it and merge with each other: the
merge of the parts' profiles equals the profile of the whole for counts, missing, min, max,
mean, std, bin counts and category counts. Loading and merging profiles needs neither NumPy
nor pandas; building one does.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from loopml.data.tables import read_table
from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray

__all__ = [
    "OTHER",
    "QUANTILES",
    "ColumnKind",
    "ColumnProfile",
    "DatasetProfile",
    "category_counts",
    "infer_kind",
    "profile_dataset",
    "read_table",
]

ColumnKind = Literal["numerical", "categorical", "binary", "text", "empty"]
_KINDS: tuple[str, ...] = get_args(ColumnKind)
QUANTILES: tuple[str, ...] = ("0", "0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99", "1")
OTHER = "__other__"
FORMAT_VERSION = 1
# Strings are "text" (not compared by drift tests) above this mean length ...
TEXT_MEAN_LENGTH = 50
# ... or when at least this many values are present and more than half of them are distinct.
TEXT_MIN_COUNT = 1000
TEXT_DISTINCT_SHARE = 0.5

_Family = Literal["bool", "number", "datetime", "timedelta", "string"]
_NUMERIC_INFERRED = {"integer", "floating", "mixed-integer-float", "decimal"}


@dataclass(frozen=True)
class ColumnProfile:
    """Statistics of one column; missing values (null, NaN, +-inf) are left out of all but
    ``missing``.

    Numbers and booleans (kind ``numerical``, or ``binary`` when they are numbers) have
    ``mean``, ``std`` (population, ddof=0), ``min``, ``max``, ``quantiles`` and a histogram:
    ``bin_counts[0]`` counts values below ``bin_edges[0]``, ``bin_counts[-1]`` values above
    ``bin_edges[-1]``, and bin ``i`` the values in ``[bin_edges[i-1], bin_edges[i])`` (the
    last one closed). ``categories`` maps each value's string form to its count: for strings
    the ``max_categories`` most frequent ones plus ``"__other__"`` for the rest (none for
    ``text``); for numbers every value when there are at most ``max_categories`` of them,
    else nothing.
    """

    name: str
    kind: ColumnKind
    count: int
    missing: int
    distinct: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    bin_edges: tuple[float, ...] = ()
    bin_counts: tuple[int, ...] = ()
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def missing_rate(self) -> float:
        """Share of missing values (0.0 for a column without rows)."""
        rows = self.count + self.missing
        return self.missing / rows if rows else 0.0

    @property
    def numeric(self) -> bool:
        """Whether the values are numbers (the column has bin edges)."""
        return bool(self.bin_edges)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "name": self.name,
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "distinct": self.distinct,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "quantiles": dict(self.quantiles),
            "bin_edges": list(self.bin_edges),
            "bin_counts": list(self.bin_counts),
            "categories": dict(self.categories),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        """The column profile that :meth:`to_dict` rendered."""
        kind = data["kind"]
        if kind not in _KINDS:
            raise InvalidArgument(f"unknown column kind {kind!r}: must be one of {_KINDS}")
        edges = tuple(float(x) for x in data.get("bin_edges", ()))
        counts = tuple(int(x) for x in data.get("bin_counts", ()))
        if edges and len(counts) != len(edges) + 1:
            raise InvalidArgument(
                f"column {data['name']!r} has {len(counts)} bin counts for {len(edges)} edges: "
                f"expected {len(edges) + 1}"
            )
        return cls(
            name=str(data["name"]),
            kind=kind,
            count=int(data["count"]),
            missing=int(data["missing"]),
            distinct=int(data["distinct"]),
            mean=_optional_float(data.get("mean")),
            std=_optional_float(data.get("std")),
            min=_optional_float(data.get("min")),
            max=_optional_float(data.get("max")),
            quantiles={str(k): float(v) for k, v in data.get("quantiles", {}).items()},
            bin_edges=edges,
            bin_counts=counts,
            categories={str(k): int(v) for k, v in data.get("categories", {}).items()},
        )


@dataclass(frozen=True)
class DatasetProfile:
    """The profile of a table: its row count and one :class:`ColumnProfile` per column."""

    rows: int
    columns: dict[str, ColumnProfile]
    created_ms: int
    max_categories: int = 100

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        """The profile of both tables together (rows of a column absent from one side count
        as missing there).

        Exact for counts, missing, min, max, mean, std, bin counts and category counts (as
        long as neither side dropped categories into ``"__other__"``); quantiles are
        estimated from the merged bins. Raises InvalidArgument when a column's bin edges or
        kinds differ: profile windows with ``edges_from=`` the same reference.
        """
        from loopml.monitoring._profile_merge import absent, merge_columns

        if not isinstance(other, DatasetProfile):
            raise InvalidArgument(
                f"cannot merge a DatasetProfile with {type(other).__name__}: pass a DatasetProfile"
            )
        cap = min(self.max_categories, other.max_categories)
        columns: dict[str, ColumnProfile] = {}
        for name in [*self.columns, *(n for n in other.columns if n not in self.columns)]:
            left = self.columns.get(name) or absent(name, self.rows)
            right = other.columns.get(name) or absent(name, other.rows)
            columns[name] = merge_columns(left, right, cap)
        return DatasetProfile(
            rows=self.rows + other.rows,
            columns=columns,
            created_ms=_now_ms(),
            max_categories=cap,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with a format version; :meth:`from_dict` reads it back."""
        return {
            "format": FORMAT_VERSION,
            "rows": self.rows,
            "created_ms": self.created_ms,
            "max_categories": self.max_categories,
            "columns": [column.to_dict() for column in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetProfile:
        """The profile that :meth:`to_dict` rendered; InvalidArgument if it is not one."""
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise InvalidArgument(
                f"not a loopml dataset profile (format {found!r}): expected format {FORMAT_VERSION}"
            )
        try:
            columns = [ColumnProfile.from_dict(column) for column in data["columns"]]
            return cls(
                rows=int(data["rows"]),
                columns={column.name: column for column in columns},
                created_ms=int(data["created_ms"]),
                max_categories=int(data.get("max_categories", 100)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            if isinstance(err, InvalidArgument):
                raise
            raise InvalidArgument(
                f"malformed dataset profile: {type(err).__name__}: {err}"
            ) from err

    def save(self, path: str | Path) -> Path:
        """Write the profile as JSON to ``path``; returns the path."""
        target = Path(path)
        target.write_text(json.dumps(self.to_dict(), allow_nan=False), encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> DatasetProfile:
        """Read a profile written by :meth:`save`."""
        source = Path(path)
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except OSError as err:
            raise InvalidArgument(
                f"cannot read profile {str(source)!r}: {err.strerror or err}"
            ) from err
        except ValueError as err:
            raise InvalidArgument(f"profile {str(source)!r} is not valid JSON: {err}") from err
        return cls.from_dict(data)


def profile_dataset(
    data: pd.DataFrame | str | Path,
    *,
    bins: int = 20,
    edges_from: DatasetProfile | None = None,
    max_categories: int = 100,
) -> DatasetProfile:
    """Profile a DataFrame, or a file read with :func:`read_table`.

    Numerical bin edges split ``[min, max]`` into ``bins`` equal bins (a constant column has
    the single bin ``[v, v]``). With ``edges_from``, columns it knows keep its kind and bin
    edges, so the result compares with it and merges with other profiles built the same
    way; a column whose values changed type (numbers where it had strings, or the reverse)
    is profiled as it is instead.
    """
    import pandas as pd

    _check_count(bins, "bins", 1)
    _check_count(max_categories, "max_categories", 2)
    if edges_from is not None and not isinstance(edges_from, DatasetProfile):
        raise InvalidArgument(
            f"edges_from must be a DatasetProfile or None, not {type(edges_from).__name__}"
        )
    frame = read_table(data) if isinstance(data, str | Path) else data
    if not isinstance(frame, pd.DataFrame):
        raise InvalidArgument(
            f"cannot profile a {type(data).__name__}: pass a pandas DataFrame or the path of "
            "a CSV, Parquet or JSON lines file"
        )
    if frame.shape[1] == 0:
        raise InvalidArgument("the table has no columns: profile a table with at least one")
    names = [str(name) for name in frame.columns]
    duplicates = sorted(name for name, n in Counter(names).items() if n > 1)
    if duplicates:
        raise InvalidArgument(f"duplicate column names {duplicates}: rename them first")
    known = edges_from.columns if edges_from is not None else {}
    columns = {
        name: _profile_column(name, frame.iloc[:, i], bins, known.get(name), max_categories)
        for i, name in enumerate(names)
    }
    return DatasetProfile(
        rows=len(frame), columns=columns, created_ms=_now_ms(), max_categories=max_categories
    )


def infer_kind(values: pd.Series) -> ColumnKind:
    """The kind :func:`profile_dataset` gives a column, decided in this order:

    1. no non-missing value: ``"empty"``;
    2. booleans, or exactly two distinct values of any type: ``"binary"``;
    3. numbers, datetimes (seconds since the epoch) and durations: ``"numerical"`` (even
       with few distinct values: drift tests look at ``distinct`` to pick a test);
    4. anything else is compared as strings: ``"text"`` when the mean length is over 50
       characters, or with at least 1000 values of which more than half are distinct;
       otherwise ``"categorical"``.
    """
    return _profile_column("values", values, 1, None, 2).kind


def category_counts(values: pd.Series) -> pd.Series:
    """How often each non-missing value occurs, keyed by the string form profiles use
    (``"3"`` for 3 and 3.0, ``"0.5"``, ``"True"``, strings as they are), most frequent first.
    """
    import numpy as np
    import pandas as pd

    family = _family(values)
    if family == "string":
        return _string_counts(values)
    numbers = _numbers(values, family)
    if numbers is None:
        return _string_counts(values)
    finite = np.sort(numbers[np.isfinite(numbers)])
    uniques, counts, _ = _runs(finite)
    keys = [_number_key(float(v), family) for v in uniques]
    result = pd.Series(counts, index=pd.Index(keys, dtype=object), dtype="int64", name="count")
    return result.sort_values(ascending=False, kind="stable")


# -- building a column profile ------------------------------------------------------------


def _profile_column(
    name: str,
    values: pd.Series,
    bins: int,
    reference: ColumnProfile | None,
    max_categories: int,
) -> ColumnProfile:
    family = _family(values)
    numbers = None if family == "string" else _numbers(values, family)
    rows = len(values)
    if numbers is None:
        return _profile_strings(name, values, reference, max_categories)
    import numpy as np

    finite = numbers[np.isfinite(numbers)]
    finite.sort()
    count = int(finite.size)
    if count == 0:
        return _all_missing(name, rows, reference)
    uniques, counts, distinct = _runs(finite, limit=max_categories)
    if reference is not None and reference.numeric:
        kind, edges = reference.kind, reference.bin_edges
    else:
        kind = "binary" if family == "bool" or distinct == 2 else "numerical"
        edges = _edges(float(finite[0]), float(finite[-1]), bins)
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: no mean or std
        mean, std = float(finite.mean()), float(finite.std())
    pairs = [(_number_key(float(v), family), int(c)) for v, c in zip(uniques, counts, strict=True)]
    categories = dict(sorted(pairs, key=lambda kv: (-kv[1], kv[0])))
    return ColumnProfile(
        name=name,
        kind=kind,
        count=count,
        missing=rows - count,
        distinct=distinct,
        mean=_finite_or_none(mean),
        std=_finite_or_none(std),
        min=float(finite[0]),
        max=float(finite[-1]),
        quantiles=_sorted_quantiles(finite),
        bin_edges=edges,
        bin_counts=_bin_counts(finite, edges),
        categories=categories,
    )


def _profile_strings(
    name: str, values: pd.Series, reference: ColumnProfile | None, max_categories: int
) -> ColumnProfile:
    counts = _string_counts(values)
    count = int(counts.sum())
    if count == 0:
        return _all_missing(name, len(values), reference)
    distinct = len(counts)
    if reference is not None and reference.kind != "empty" and not reference.numeric:
        kind: ColumnKind = reference.kind
    elif distinct == 2:
        kind = "binary"
    else:
        lengths = counts.index.str.len().to_numpy()
        mean_length = float((lengths * counts.to_numpy()).sum()) / count
        many_distinct = count >= TEXT_MIN_COUNT and distinct > TEXT_DISTINCT_SHARE * count
        kind = "text" if mean_length > TEXT_MEAN_LENGTH or many_distinct else "categorical"
    categories = {} if kind == "text" else _top_categories(counts, max_categories)
    return ColumnProfile(
        name=name,
        kind=kind,
        count=count,
        missing=len(values) - count,
        distinct=distinct,
        categories=categories,
    )


def _all_missing(name: str, rows: int, reference: ColumnProfile | None) -> ColumnProfile:
    if reference is None or reference.kind == "empty":
        return ColumnProfile(name=name, kind="empty", count=0, missing=rows, distinct=0)
    edges = reference.bin_edges
    return ColumnProfile(
        name=name,
        kind=reference.kind,
        count=0,
        missing=rows,
        distinct=0,
        bin_edges=edges,
        bin_counts=(0,) * (len(edges) + 1) if edges else (),
    )


def _family(values: pd.Series) -> _Family:
    import numpy as np
    from pandas.api import types

    dtype = values.dtype
    if isinstance(dtype, types.CategoricalDtype) or types.is_complex_dtype(dtype):
        return "string"
    if types.is_bool_dtype(dtype):
        return "bool"
    if types.is_numeric_dtype(dtype):
        return "number"
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if types.is_timedelta64_dtype(dtype):
        return "timedelta"
    if dtype == np.dtype(object):
        inferred = types.infer_dtype(values, skipna=True)
        if inferred == "boolean":
            return "bool"
        if inferred in _NUMERIC_INFERRED:
            return "number"
    return "string"


def _numbers(values: pd.Series, family: _Family) -> NDArray[np.float64] | None:
    """The values as float64 (missing as NaN), or None when they do not convert."""
    import numpy as np
    import pandas as pd

    try:
        if family == "datetime":
            if getattr(values.dtype, "tz", None) is not None:
                values = values.dt.tz_convert("UTC").dt.tz_localize(None)
            values = (values - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
        elif family == "timedelta":
            values = values / pd.Timedelta(seconds=1)
        numbers: NDArray[np.float64] = values.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError, OverflowError):
        return None
    return numbers


def _string_counts(values: pd.Series) -> pd.Series:
    import pandas as pd
    from pandas.api import types

    present = values[values.notna()]
    if not types.is_string_dtype(present.dtype) or present.dtype == object:
        present = present.astype(str)
    counts = present.value_counts(dropna=True)
    counts = counts[counts > 0]
    counts.index = pd.Index(counts.index.astype(str), dtype=object)
    if not counts.index.is_unique:
        counts = counts.groupby(level=0).sum().sort_values(ascending=False, kind="stable")
    counts.name = "count"
    return counts.astype("int64")


def _top_categories(counts: pd.Series, limit: int) -> dict[str, int]:
    """The ``limit`` most frequent values (ties by value), the rest summed as ``OTHER``.

    ``counts`` is sorted by decreasing count; only the values tied with the last kept one
    or above are ranked again, by value.
    """
    candidates = counts if len(counts) <= limit else counts[counts >= counts.iloc[limit - 1]]
    ranked = candidates.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    kept = ranked.iloc[:limit]
    result = {str(k): int(v) for k, v in zip(kept.index, kept.to_numpy(), strict=True)}
    if len(counts) > limit:
        result[OTHER] = result.get(OTHER, 0) + int(counts.sum()) - int(kept.sum())
    return result


def _runs(
    ordered: NDArray[np.float64], limit: int | None = None
) -> tuple[NDArray[np.float64], NDArray[np.int64], int]:
    """Distinct values of a sorted array, their counts (both empty past ``limit`` distinct
    values) and the number of distinct values."""
    import numpy as np

    if ordered.size == 0:
        return ordered, np.zeros(0, dtype=np.int64), 0
    starts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    distinct = int(starts.size) + 1
    if limit is not None and distinct > limit:
        return ordered[:0], np.zeros(0, dtype=np.int64), distinct
    starts = np.concatenate(([0], starts))
    counts = np.diff(np.concatenate((starts, [ordered.size]))).astype(np.int64)
    return ordered[starts], counts, distinct


def _number_key(value: float, family: _Family) -> str:
    if family == "bool":
        return "True" if value else "False"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _edges(low: float, high: float, bins: int) -> tuple[float, ...]:
    import numpy as np

    if low == high:
        return (low, high)
    if math.isfinite(high - low):
        edges = np.linspace(low, high, bins + 1)
    else:  # the span overflows float64: interpolate without computing it
        steps = np.linspace(0.0, 1.0, bins + 1)
        edges = np.maximum.accumulate(low * (1.0 - steps) + high * steps)
    edges[0], edges[-1] = low, high
    return tuple(float(x) for x in edges)


def _bin_counts(ordered: NDArray[np.float64], edges: tuple[float, ...]) -> tuple[int, ...]:
    import numpy as np

    bounds = np.asarray(edges, dtype=np.float64)
    below = np.searchsorted(ordered, bounds[:-1], side="left")
    upto_last = np.searchsorted(ordered, bounds[-1:], side="right")
    cumulative = np.concatenate(([0], below, upto_last, [ordered.size]))
    return tuple(int(x) for x in np.diff(cumulative))


def _sorted_quantiles(ordered: NDArray[np.float64]) -> dict[str, float]:
    """Quantiles by linear interpolation (NumPy's default method) on sorted values."""
    last = ordered.size - 1
    result: dict[str, float] = {}
    for key in QUANTILES:
        position = float(key) * last
        low = math.floor(position)
        high = min(low + 1, last)
        fraction = position - low
        a, b = float(ordered[low]), float(ordered[high])
        result[key] = a + (b - a) * fraction if fraction else a
    return result


# -- small helpers ------------------------------------------------------------------------


def _check_count(value: object, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"{name} must be an integer >= {minimum}, not {value!r}")


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _now_ms() -> int:
    return int(time.time() * 1000)
