"""Declarative expectations on a table, checked with vectorised pandas.

An expectation stores its parameters in ``__init__`` (the scikit-learn contract) and checks
them when it runs. :func:`validate` runs a set of expectations on a DataFrame and returns a
:class:`ValidationReport` naming, per rule, the rows that broke it;
:meth:`ValidationReport.raise_for_failures` turns a failed report into
:class:`~loopml.errors.InvalidArgument`, which stops a pipeline.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from loopml.data.results import RuleResult, ValidationReport
from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray

__all__ = [
    "TYPES",
    "AllowedValues",
    "ColumnExists",
    "ColumnType",
    "Expectation",
    "Expectations",
    "InRange",
    "NotNull",
    "RowCount",
    "RuleResult",
    "Unique",
    "ValidationReport",
    "load_expectations",
    "validate",
]

TYPES = ("int", "float", "number", "str", "bool", "datetime")
"""The type names :class:`ColumnType` accepts."""

MAX_SAMPLES = 20
"""How many failing row indexes and values a rule result keeps."""


class Expectation:
    """Base of every expectation: parameters in ``__init__``, checked in :meth:`check`."""

    rule: ClassVar[str] = "expectation"
    _params: ClassVar[tuple[str, ...]] = ()

    def check_params(self) -> None:
        """Raise :class:`InvalidArgument` when a parameter is not allowed."""

    def check(self, frame: pd.DataFrame) -> RuleResult:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._params}

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value!r}" for name, value in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.get_params() == other.get_params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))


class _ColumnExpectation(Expectation):
    """An expectation on one column; a missing column fails it."""

    column: str

    def check(self, frame: pd.DataFrame) -> RuleResult:
        self.check_params()
        if self.column not in frame.columns:
            return _missing(self.rule, self.column, frame)
        return self._check_series(frame[self.column])

    def _check_series(self, series: pd.Series[Any]) -> RuleResult:
        raise NotImplementedError


class ColumnExists(_ColumnExpectation):
    """The table has a column named ``column``."""

    rule = "column_exists"
    _params = ("column",)

    def __init__(self, column: str) -> None:
        self.column = column

    def _check_series(self, series: pd.Series[Any]) -> RuleResult:
        return _passed(self.rule, self.column, f"{self.rule}: column {self.column!r} exists")


class ColumnType(_ColumnExpectation):
    """Every non-null value of ``column`` has ``type``, one of :data:`TYPES`.

    ``"int"`` also accepts a float column whose values are all whole numbers (what pandas
    makes of integers with missing values); ``"number"`` is int or float, never bool.
    """

    rule = "column_type"
    _params = ("column", "type")

    def __init__(self, column: str, type: str) -> None:
        self.column = column
        self.type = type

    def check_params(self) -> None:
        if self.type not in TYPES:
            raise InvalidArgument(
                f"unknown column type {self.type!r} for column {self.column!r}; "
                f"valid types: {', '.join(TYPES)}"
            )

    def _check_series(self, series: pd.Series[Any]) -> RuleResult:
        import numpy as np
        from pandas.api import types as ptypes

        dtype = series.dtype
        notna = series.notna().to_numpy(dtype=bool)
        is_bool = ptypes.is_bool_dtype(dtype)
        matches = {
            "int": ptypes.is_integer_dtype(dtype) and not is_bool,
            "float": ptypes.is_float_dtype(dtype),
            "number": ptypes.is_numeric_dtype(dtype) and not is_bool,
            "str": ptypes.is_string_dtype(dtype) and not ptypes.is_object_dtype(dtype),
            "bool": is_bool,
            "datetime": ptypes.is_datetime64_any_dtype(dtype),
        }[self.type]
        if matches:
            return _passed(
                self.rule, self.column, f"{self.rule}: column {self.column!r} is {self.type}"
            )
        if self.type == "int" and ptypes.is_float_dtype(dtype):
            values = series.to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                mask = notna & (np.mod(values, 1.0) != 0)
        elif ptypes.is_object_dtype(dtype):
            kinds = series.map(type, na_action="ignore")
            mask = notna & ~kinds.isin(_python_types(self.type)).to_numpy(dtype=bool)
        else:
            mask = notna
        return _from_mask(
            self.rule,
            self.column,
            series,
            mask,
            f"column {self.column!r} (dtype {dtype}) should hold {self.type} values",
        )


class NotNull(_ColumnExpectation):
    """At most ``max_share`` (0 to 1) of the values of ``column`` are null."""

    rule = "not_null"
    _params = ("column", "max_share")

    def __init__(self, column: str, *, max_share: float = 0.0) -> None:
        self.column = column
        self.max_share = max_share

    def check_params(self) -> None:
        share = self.max_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise InvalidArgument(
                f"max_share for column {self.column!r} must be a number from 0 to 1, not {share!r}"
            )

    def _check_series(self, series: pd.Series[Any]) -> RuleResult:
        mask = series.isna().to_numpy(dtype=bool)
        count = int(mask.sum())
        share = count / len(series) if len(series) else 0.0
        allowed = f"at most {self.max_share:.2%} allowed" if self.max_share else "none allowed"
        return _from_mask(
            self.rule,
            self.column,
            series,
            mask,
            f"column {self.column!r} has {_plural(count, 'null value')} ({share:.2%}; {allowed})",
            passed=share <= self.max_share,
        )


class InRange(_ColumnExpectation):
    """Every non-null value of ``column`` lies in ``[min, max]`` (either bound may be None)."""

    rule = "in_range"
    _params = ("column", "min", "max")

    def __init__(self, column: str, *, min: Any = None, max: Any = None) -> None:
        self.column = column
        self.min = min
        self.max = max

    def check_params(self) -> None:
        _check_bounds(f"range of column {self.column!r}", self.min, self.max)

    def _check_series(self, series: pd.Series[Any]) -> RuleResult:
        import numpy as np

        mask: NDArray[np.bool_] = np.zeros(len(series), dtype=bool)
        try:
            if self.min is not None:
                mask |= (series < self.min).fillna(False).to_numpy(dtype=bool)
            if self.max is not None:
                mask |= (series > self.max).fillna(False).to_numpy(dtype=bool)
        except TypeError as err:
            message = (
                f"{self.rule}: broken: column {self.column!r} (dtype {series.dtype}) cannot "
                f"be compared with range {_bounds(self.min, self.max)}: {err}"
            )
            return RuleResult(self.rule, self.column, False, len(series), (), (), message)
        return _from_mask(
            self.rule,
            self.column,
            series,
            mask,
            f"column {self.column!r} should lie in {_bounds(self.min, self.max)}",
        )


class AllowedValues(_ColumnExpectation):
    """Every non-null value of ``column`` is one of ``values``."""

    rule = "allowed_values"
    _params = ("column", "values")

    def __init__(self, column: str, values: Iterable[Any]) -> None:
        self.column = column
        self.values = values

    def check_params(self) -> None:
        if isinstance(self.values, str | bytes) or not isinstance(self.values, Iterable):
            raise InvalidArgument(
                f"allowed values of column {self.column!r} must be a list, not {self.values!r}"
            )

    def _check_series(self, series: pd.Series[Any]) -> RuleResult:
        allowed = list(self.values)
        mask = series.notna().to_numpy(dtype=bool) & ~series.isin(allowed).to_numpy(dtype=bool)
        shown = ", ".join(repr(v) for v in allowed[:MAX_SAMPLES])
        more = ", ..." if len(allowed) > MAX_SAMPLES else ""
        return _from_mask(
            self.rule,
            self.column,
            series,
            mask,
            f"column {self.column!r} should only hold [{shown}{more}]",
        )


class Unique(Expectation):
    """No two rows share a value of ``columns`` (one column, or a combination of several)."""

    rule = "unique"
    _params = ("columns",)

    def __init__(self, *columns: str) -> None:
        self.columns = columns

    def __repr__(self) -> str:
        return f"Unique({', '.join(repr(c) for c in self.columns)})"

    def check_params(self) -> None:
        if not self.columns or not all(isinstance(c, str) for c in self.columns):
            raise InvalidArgument(
                f"Unique needs one or more column names, not {list(self.columns)!r}"
            )

    def check(self, frame: pd.DataFrame) -> RuleResult:
        self.check_params()
        label = ", ".join(self.columns)
        for column in self.columns:
            if column not in frame.columns:
                return _missing(self.rule, column, frame, label=label)
        mask = frame.duplicated(subset=list(self.columns), keep=False).to_numpy(dtype=bool)
        what = f"column {label!r}" if len(self.columns) == 1 else f"columns ({label})"
        values: pd.Series[Any] | pd.DataFrame = (
            frame[self.columns[0]] if len(self.columns) == 1 else frame[list(self.columns)]
        )
        return _from_mask(
            self.rule, label, values, mask, f"{what} should be unique; rows share a value"
        )


class RowCount(Expectation):
    """The table has between ``min`` and ``max`` rows (either bound may be None)."""

    rule = "row_count"
    _params = ("min", "max")

    def __init__(self, *, min: int | None = None, max: int | None = None) -> None:
        self.min = min
        self.max = max

    def check_params(self) -> None:
        for name, value in (("min", self.min), ("max", self.max)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidArgument(f"row count {name} must be an integer, not {value!r}")
        _check_bounds("row count", self.min, self.max)

    def check(self, frame: pd.DataFrame) -> RuleResult:
        self.check_params()
        rows = len(frame)
        ok = (self.min is None or rows >= self.min) and (self.max is None or rows <= self.max)
        verdict = "" if ok else "broken: "
        message = (
            f"{self.rule}: {verdict}table has {rows} rows; expected {_bounds(self.min, self.max)}"
        )
        return RuleResult(self.rule, None, ok, 0 if ok else rows, (), (), message)


class Expectations(Sequence[Expectation]):
    """An ordered set of expectations; building it checks every parameter."""

    def __init__(self, *items: Expectation) -> None:
        for item in items:
            if not isinstance(item, Expectation):
                raise InvalidArgument(
                    f"{item!r} is not an expectation; use one of {', '.join(_RULE_NAMES)}"
                )
            item.check_params()
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Expectation:  # type: ignore[override]
        return self.items[index]

    def __iter__(self) -> Iterator[Expectation]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"Expectations({', '.join(repr(item) for item in self.items)})"

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Expectations:
        """Build expectations from a spec: ``{"columns": {...}, "rows": {...}, "unique": [...]}``.

        Per column: ``type``, ``not_null`` (true, or ``{max_share: x}``), ``range``
        (``[min, max]`` or ``{min, max}``), ``allowed`` (a list) and ``unique`` (true). Every
        listed column must exist. ``rows`` takes ``min`` and ``max``; ``unique`` lists
        combinations of columns that must be unique together.
        """
        if not isinstance(spec, Mapping):
            raise InvalidArgument(f"an expectations spec must be a mapping, not {spec!r}")
        _check_keys("expectations spec", spec, _TOP_KEYS)
        items: list[Expectation] = []
        columns = spec.get("columns") or {}
        if not isinstance(columns, Mapping):
            raise InvalidArgument(f"'columns' must map column names to rules, not {columns!r}")
        for column, rules in columns.items():
            items.extend(_column_rules(str(column), rules or {}))
        rows = spec.get("rows")
        if rows is not None:
            if not isinstance(rows, Mapping):
                raise InvalidArgument(f"'rows' must be a mapping with min/max, not {rows!r}")
            _check_keys("'rows'", rows, ("min", "max"))
            items.append(RowCount(min=rows.get("min"), max=rows.get("max")))
        for group in spec.get("unique") or []:
            names = [group] if isinstance(group, str) else list(group)
            items.append(Unique(*names))
        return cls(*items)


def load_expectations(path: str | Path) -> Expectations:
    """Read an expectations spec from a YAML (``.yaml``, ``.yml``) or JSON file."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise InvalidArgument(f"cannot read expectations {str(source)!r}: no such file")
    text = source.read_text()
    try:
        if source.suffix.lower() == ".json":
            spec = json.loads(text)
        else:
            import yaml

            spec = yaml.safe_load(text)
    except (ValueError, ImportError) as err:
        raise InvalidArgument(f"cannot parse expectations {str(source)!r}: {err}") from err
    except Exception as err:  # yaml.YAMLError does not derive from ValueError
        raise InvalidArgument(f"cannot parse expectations {str(source)!r}: {err}") from err
    return Expectations.from_dict(spec or {})


def validate(
    frame: pd.DataFrame,
    expectations: Expectations | Iterable[Expectation] | Mapping[str, Any],
) -> ValidationReport:
    """Run every expectation on ``frame`` and report, per rule, which rows broke it."""
    if isinstance(expectations, Mapping):
        checks = Expectations.from_dict(expectations)
    elif isinstance(expectations, Expectations):
        checks = expectations
    else:
        checks = Expectations(*expectations)
    return ValidationReport(rows=len(frame), results=tuple(e.check(frame) for e in checks))


_RULE_NAMES = (
    "ColumnExists",
    "ColumnType",
    "NotNull",
    "InRange",
    "AllowedValues",
    "Unique",
    "RowCount",
)
_TOP_KEYS = ("columns", "rows", "unique")
_COLUMN_KEYS = ("type", "not_null", "range", "allowed", "unique")


def _column_rules(column: str, rules: Any) -> list[Expectation]:
    if not isinstance(rules, Mapping):
        raise InvalidArgument(
            f"rules of column {column!r} must be a mapping of {', '.join(_COLUMN_KEYS)}, "
            f"not {rules!r}"
        )
    _check_keys(f"column {column!r}", rules, _COLUMN_KEYS)
    items: list[Expectation] = [ColumnExists(column)]
    if "type" in rules:
        items.append(ColumnType(column, rules["type"]))
    not_null = rules.get("not_null")
    if isinstance(not_null, Mapping):
        _check_keys(f"not_null of column {column!r}", not_null, ("max_share",))
        items.append(NotNull(column, max_share=not_null.get("max_share", 0.0)))
    elif not_null is True:
        items.append(NotNull(column))
    elif not_null not in (None, False):
        raise InvalidArgument(
            f"not_null of column {column!r} must be true, false or {{max_share: x}}, "
            f"not {not_null!r}"
        )
    if "range" in rules:
        bounds = rules["range"]
        if isinstance(bounds, Mapping):
            _check_keys(f"range of column {column!r}", bounds, ("min", "max"))
            items.append(InRange(column, min=bounds.get("min"), max=bounds.get("max")))
        elif isinstance(bounds, list | tuple) and len(bounds) == 2:
            items.append(InRange(column, min=bounds[0], max=bounds[1]))
        else:
            raise InvalidArgument(
                f"range of column {column!r} must be [min, max] or {{min: .., max: ..}}, "
                f"not {bounds!r}"
            )
    if "allowed" in rules:
        items.append(AllowedValues(column, rules["allowed"]))
    if rules.get("unique") is True:
        items.append(Unique(column))
    return items


def _check_keys(where: str, mapping: Mapping[str, Any], valid: Sequence[str]) -> None:
    unknown = [key for key in mapping if key not in valid]
    if unknown:
        raise InvalidArgument(
            f"unknown rule {unknown[0]!r} in {where}; valid rules: {', '.join(valid)}"
        )


def _check_bounds(what: str, low: Any, high: Any) -> None:
    if low is None and high is None:
        raise InvalidArgument(f"{what} needs min, max or both; got neither")
    if low is not None and high is not None:
        try:
            bad = bool(low > high)
        except TypeError as err:
            raise InvalidArgument(f"{what}: min {low!r} and max {high!r} do not compare") from err
        if bad:
            raise InvalidArgument(f"{what}: min {low!r} is above max {high!r}")


def _bounds(low: Any, high: Any) -> str:
    if low is None:
        return f"<= {high!r}"
    if high is None:
        return f">= {low!r}"
    return f"[{low!r}, {high!r}]"


def _python_types(name: str) -> list[type]:
    import numpy as np
    import pandas as pd

    ints: list[type] = [int, np.int8, np.int16, np.int32, np.int64]
    ints += [np.uint8, np.uint16, np.uint32, np.uint64]
    floats: list[type] = [float, np.float16, np.float32, np.float64]
    table: dict[str, list[type]] = {
        "int": ints,
        "float": floats,
        "number": ints + floats,
        "str": [str, np.str_],
        "bool": [bool, np.bool_],
        "datetime": [_dt.datetime, pd.Timestamp, np.datetime64],
    }
    return table[name]


def _passed(rule: str, column: str | None, message: str) -> RuleResult:
    return RuleResult(rule, column, True, 0, (), (), message)


def _missing(
    rule: str, column: str, frame: pd.DataFrame, *, label: str | None = None
) -> RuleResult:
    shown = ", ".join(repr(str(c)) for c in list(frame.columns)[:MAX_SAMPLES])
    more = ", ..." if len(frame.columns) > MAX_SAMPLES else ""
    return RuleResult(
        rule,
        label or column,
        False,
        len(frame),
        (),
        (),
        f"{rule}: broken: column {column!r} is missing; the table has columns [{shown}{more}]",
    )


def _from_mask(
    rule: str,
    column: str,
    values: pd.Series[Any] | pd.DataFrame,
    mask: NDArray[np.bool_],
    what: str,
    *,
    passed: bool | None = None,
) -> RuleResult:
    count = int(mask.sum())
    ok = count == 0 if passed is None else passed
    if count == 0:
        return RuleResult(rule, column, ok, 0, (), (), f"{rule}: {what}")
    positions = mask.nonzero()[0][:MAX_SAMPLES]
    rows = tuple(_plain(label) for label in values.index[positions])
    picked = values.iloc[positions]
    if hasattr(picked, "columns"):
        samples = tuple(tuple(_plain(v) for v in row) for row in picked.itertuples(index=False))
    else:
        samples = tuple(_plain(v) for v in picked.tolist())
    more = ", ..." if count > len(rows) else ""
    shown = ", ".join(repr(r) for r in rows)
    verdict = "" if ok else "broken: "
    message = f"{rule}: {verdict}{what}; {_plural(count, 'failing row')} [{shown}{more}]"
    return RuleResult(rule, column, ok, count if not ok else 0, rows, samples, message)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a pandas or NumPy scalar (NaN and NA become None)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    item = getattr(value, "item", None)
    if type(value).__name__ == "datetime64":
        return str(value)
    if callable(item) and not isinstance(value, _dt.datetime):
        try:
            return _plain(item())
        except (ValueError, TypeError):
            pass
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
