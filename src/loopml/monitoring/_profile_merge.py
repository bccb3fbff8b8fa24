"""Merging two column profiles: exact for counts, missing, min, max, mean, std, bin counts
and category counts; quantiles re-estimated from the merged bins (see :mod:`.profile`, which
imports this module when it merges)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from loopml.errors import InvalidArgument
from loopml.monitoring.profile import OTHER, QUANTILES, ColumnProfile

if TYPE_CHECKING:
    from loopml.monitoring.profile import ColumnKind

__all__ = ["absent", "merge_columns"]


def absent(name: str, rows: int) -> ColumnProfile:
    return ColumnProfile(name=name, kind="empty", count=0, missing=rows, distinct=0)


def merge_columns(a: ColumnProfile, b: ColumnProfile, cap: int) -> ColumnProfile:
    if a.kind == "empty":
        return replace(b, missing=b.missing + a.missing)
    if b.kind == "empty":
        return replace(a, missing=a.missing + b.missing)
    kind = _merged_kind(a, b)
    if a.bin_edges != b.bin_edges:
        raise InvalidArgument(
            f"cannot merge column {a.name!r}: its bin edges differ between the profiles "
            f"({len(a.bin_edges)} edges from {a.bin_edges[:1]} vs {len(b.bin_edges)} from "
            f"{b.bin_edges[:1]}); profile every window with edges_from= the same reference"
        )
    edges = a.bin_edges
    count = a.count + b.count
    categories, distinct = _merged_categories(a, b, kind, cap)
    if not a.numeric:
        return ColumnProfile(
            name=a.name,
            kind=kind,
            count=count,
            missing=a.missing + b.missing,
            distinct=distinct,
            categories=categories,
        )
    bin_counts = tuple(x + y for x, y in zip(a.bin_counts, b.bin_counts, strict=True))
    mean, std = _merged_moments(a, b)
    low = opt_min(a.min, b.min)
    high = opt_max(a.max, b.max)
    return ColumnProfile(
        name=a.name,
        kind=kind,
        count=count,
        missing=a.missing + b.missing,
        distinct=distinct,
        mean=mean,
        std=std,
        min=low,
        max=high,
        quantiles=_binned_quantiles(edges, bin_counts, low, high),
        bin_edges=edges,
        bin_counts=bin_counts,
        categories=categories,
    )


def _merged_kind(a: ColumnProfile, b: ColumnProfile) -> ColumnKind:
    if a.kind == b.kind:
        return a.kind
    if {a.kind, b.kind} == {"binary", "categorical"} and not a.numeric and not b.numeric:
        return "categorical"
    raise InvalidArgument(
        f"cannot merge column {a.name!r}: it is {a.kind!r} in one profile and {b.kind!r} "
        "in the other; profile every window with edges_from= the same reference"
    )


def _merged_categories(
    a: ColumnProfile, b: ColumnProfile, kind: ColumnKind, cap: int
) -> tuple[dict[str, int], int]:
    """Summed category counts and the distinct count (a lower bound once values were dropped)."""
    complete_a, complete_b = _complete(a), _complete(b)
    union: dict[str, int] = dict(a.categories)
    for key, value in b.categories.items():
        union[key] = union.get(key, 0) + value
    known = len(union) - (OTHER in union)
    exact = complete_a and complete_b
    distinct = known if exact else max(a.distinct, b.distinct, known)
    if kind == "text":
        return {}, distinct
    if a.numeric:
        return (union if exact and known <= cap else {}), distinct
    other = union.pop(OTHER, 0)
    ranked = sorted(union.items(), key=lambda kv: (-kv[1], kv[0]))
    result = dict(ranked[:cap])
    other += sum(value for _, value in ranked[cap:])
    if other:
        result[OTHER] = other
    return result, distinct


def _complete(column: ColumnProfile) -> bool:
    """Whether ``categories`` lists every value of the column."""
    if column.count == 0:
        return True
    if column.kind == "text" or OTHER in column.categories:
        return False
    return bool(column.categories)


def _merged_moments(a: ColumnProfile, b: ColumnProfile) -> tuple[float | None, float | None]:
    """Mean and population std of both sides (Chan et al.'s parallel update of count, mean, M2)."""
    if a.mean is None or a.std is None or not a.count:
        return b.mean, b.std
    if b.mean is None or b.std is None or not b.count:
        return a.mean, a.std
    n = a.count + b.count
    delta = b.mean - a.mean
    mean = a.mean + delta * b.count / n
    m2 = a.std**2 * a.count + b.std**2 * b.count + delta**2 * a.count * b.count / n
    return mean, math.sqrt(max(m2, 0.0) / n)


def _binned_quantiles(
    edges: tuple[float, ...], counts: tuple[int, ...], low: float | None, high: float | None
) -> dict[str, float]:
    """Quantiles estimated from a histogram, spreading each bin's values evenly."""
    total = sum(counts)
    if not total or low is None or high is None:
        return {}
    bounds = [low, *edges, high]
    segments = [
        (min(max(bounds[i], low), high), min(max(bounds[i + 1], low), high))
        for i in range(len(counts))
    ]
    result: dict[str, float] = {}
    for key in QUANTILES:
        target = float(key) * total
        seen = 0
        value = high
        for (start, stop), n in zip(segments, counts, strict=True):
            if n and seen + n >= target:
                value = start + (stop - start) * (target - seen) / n
                break
            seen += n
        result[key] = min(max(value, low), high)
    result["0"], result["1"] = low, high
    return result


def opt_min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def opt_max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
