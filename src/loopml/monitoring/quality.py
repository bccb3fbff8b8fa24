"""Data quality of a table against a reference profile: missing values, values out of the
reference range, categories never seen in the reference, type changes, missing columns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument
from loopml.monitoring.profile import (
    OTHER,
    ColumnKind,
    ColumnProfile,
    DatasetProfile,
    category_counts,
    profile_dataset,
    read_table,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnQuality", "QualityReport", "check_quality"]

# How many unseen categories a column lists (all of them are counted).
MAX_LISTED_CATEGORIES = 20


@dataclass(frozen=True)
class ColumnQuality:
    """Quality of one column present in both the reference and the current data.

    ``out_of_range`` counts current values outside the reference's bin range (its min and
    max when it was profiled from data). ``new_categories`` lists up to 20 values of a
    categorical or binary column that the reference never had, most frequent first;
    ``new_category_count`` counts them all and ``new_category_rows`` the rows holding them.
    A reference that kept only its top categories treats the values it dropped as unseen.
    """

    name: str
    kind: ColumnKind
    current_kind: ColumnKind
    missing_rate_reference: float
    missing_rate_current: float
    out_of_range: int
    new_categories: tuple[str, ...]
    new_category_count: int
    new_category_rows: int
    type_changed: bool


@dataclass(frozen=True)
class QualityReport:
    """Per-column quality and the table-level findings; ``rows`` counts the current rows."""

    columns: dict[str, ColumnQuality]
    missing_columns: tuple[str, ...]
    extra_columns: tuple[str, ...]
    all_null_columns: tuple[str, ...]
    rows: int
    reference_rows: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "missing_columns": list(self.missing_columns),
            "extra_columns": list(self.extra_columns),
            "all_null_columns": list(self.all_null_columns),
            "columns": {
                name: {**asdict(column), "new_categories": list(column.new_categories)}
                for name, column in self.columns.items()
            },
        }


def check_quality(
    reference: DatasetProfile, current: pd.DataFrame | DatasetProfile | str | Path
) -> QualityReport:
    """Compare ``current`` (a DataFrame, a file, or a profile built with
    ``edges_from=reference``) with the reference profile.

    From data, the unseen categories are exact; from a profile, only the categories it kept
    can be listed.
    """
    if not isinstance(reference, DatasetProfile):
        raise InvalidArgument(
            f"reference must be a DatasetProfile, not {type(reference).__name__}: "
            "build it with profile_dataset(reference_data)"
        )
    frame = None
    if isinstance(current, DatasetProfile):
        profile = current
    else:
        frame = read_table(current) if isinstance(current, str | Path) else current
        profile = profile_dataset(
            frame, edges_from=reference, max_categories=reference.max_categories
        )
    sources = {} if frame is None else {str(name): i for i, name in enumerate(frame.columns)}
    columns: dict[str, ColumnQuality] = {}
    for name, ref in reference.columns.items():
        now = profile.columns.get(name)
        if now is None:
            continue
        values = frame.iloc[:, sources[name]] if frame is not None else None
        columns[name] = _column_quality(ref, now, values)
    return QualityReport(
        columns=columns,
        missing_columns=tuple(n for n in reference.columns if n not in profile.columns),
        extra_columns=tuple(n for n in profile.columns if n not in reference.columns),
        all_null_columns=tuple(
            n for n, c in profile.columns.items() if profile.rows and c.count == 0
        ),
        rows=profile.rows,
        reference_rows=reference.rows,
    )


def _column_quality(
    ref: ColumnProfile, now: ColumnProfile, values: pd.Series | None
) -> ColumnQuality:
    changed = _type_changed(ref, now)
    out_of_range = 0
    if not changed and ref.numeric and now.count:
        if now.bin_edges != ref.bin_edges:
            raise InvalidArgument(
                f"column {ref.name!r} of the current profile has other bin edges than the "
                "reference: build it with profile_dataset(data, edges_from=reference)"
            )
        out_of_range = now.bin_counts[0] + now.bin_counts[-1]
    listed: tuple[str, ...] = ()
    new_count = new_rows = 0
    if not changed and ref.kind in ("categorical", "binary") and now.count:
        known = set(ref.categories) - {OTHER}
        if values is not None:
            counts = category_counts(values)
            fresh = counts[~counts.index.isin(known)]
            fresh = fresh.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
            unseen = [(str(k), int(v)) for k, v in fresh.iloc[:MAX_LISTED_CATEGORIES].items()]
            new_count, new_rows = len(fresh), int(fresh.sum())
        else:
            unseen = [(k, v) for k, v in now.categories.items() if k not in known and k != OTHER]
            unseen.sort(key=lambda kv: (-kv[1], kv[0]))
            new_count, new_rows = len(unseen), sum(v for _, v in unseen)
        listed = tuple(k for k, _ in unseen[:MAX_LISTED_CATEGORIES])
    return ColumnQuality(
        name=ref.name,
        kind=ref.kind,
        current_kind=now.kind,
        missing_rate_reference=ref.missing_rate,
        missing_rate_current=now.missing_rate,
        out_of_range=out_of_range,
        new_categories=listed,
        new_category_count=new_count,
        new_category_rows=new_rows,
        type_changed=changed,
    )


def _type_changed(ref: ColumnProfile, now: ColumnProfile) -> bool:
    """Numbers where the reference had strings, or the reverse (empty columns never change)."""
    if ref.kind == "empty" or now.kind == "empty" or now.count == 0:
        return False
    return ref.numeric != now.numeric
