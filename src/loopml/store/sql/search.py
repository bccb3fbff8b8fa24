"""Compile a parsed run filter and order-by into one SQL query that selects run ids.

Metric, param and tag predicates become ``EXISTS`` sub-queries on their primary keys (run id,
key); metric predicates read ``latest_metrics``, so a search never touches the metric history.
Ordering by a metric, param or tag is an outer join on the same key, missing values last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from loopml.core.entities import LifecycleStage
from loopml.core.filters import And, Comparison, Expr, Field, Or, parse_filter, parse_order_by
from loopml.store.sql import schema as t

_KEYED = {"metric": t.latest_metrics, "param": t.params, "tag": t.run_tags}


def compile_search(
    experiment_keys: Sequence[int] | None,
    filter_text: str,
    order_by: Sequence[str] | str | None,
    lifecycle_stage: LifecycleStage | None,
) -> sa.Select[Any]:
    runs = t.runs
    query = sa.select(runs.c.run_id)
    if experiment_keys is not None:
        query = query.where(runs.c.experiment_id.in_(list(experiment_keys)))
    if lifecycle_stage is not None:
        query = query.where(runs.c.lifecycle_stage == lifecycle_stage.value)
    expr = parse_filter(filter_text)
    if expr is not None:
        query = query.where(_compile(expr))
    for n, key in enumerate(parse_order_by(order_by)):
        column = _order_column(key.field, n)
        if isinstance(column, tuple):
            joined, column = column
            query = query.outerjoin(joined, joined.c.run_id == runs.c.run_id)
        ordered = column.desc() if key.descending else column.asc()
        query = query.order_by(column.is_(None), ordered)
    return query.order_by(runs.c.start_time.desc(), runs.c.run_id)


def _compile(expr: Expr) -> sa.ColumnElement[bool]:
    if isinstance(expr, And):
        return sa.and_(*(_compile(item) for item in expr.items))
    if isinstance(expr, Or):
        return sa.or_(*(_compile(item) for item in expr.items))
    return _comparison(expr)


def _comparison(c: Comparison) -> sa.ColumnElement[bool]:
    if c.field.kind == "attribute":
        return _predicate(getattr(t.runs.c, c.field.key), c.op, c.value)
    table = _KEYED[c.field.kind]
    has_key = sa.select(sa.literal(1)).where(
        table.c.run_id == t.runs.c.run_id, table.c.key == c.field.key
    )
    if c.op == "IS NULL":
        return ~has_key.exists()
    if c.op == "IS NOT NULL":
        return has_key.exists()
    return has_key.where(_predicate(table.c.value, c.op, c.value)).exists()


def _predicate(column: Any, op: str, value: Any) -> sa.ColumnElement[bool]:
    if isinstance(value, float) and value != value:  # NaN is stored as NULL
        if op == "=":
            return column.is_(None)  # type: ignore[no-any-return]
        if op == "!=":
            return column.is_not(None)  # type: ignore[no-any-return]
        return sa.false()
    match op:
        case "=":
            return column == value  # type: ignore[no-any-return]
        case "!=":
            return column != value  # type: ignore[no-any-return]
        case "<":
            return column < value  # type: ignore[no-any-return]
        case "<=":
            return column <= value  # type: ignore[no-any-return]
        case ">":
            return column > value  # type: ignore[no-any-return]
        case ">=":
            return column >= value  # type: ignore[no-any-return]
        case "LIKE":
            return column.like(value)  # type: ignore[no-any-return]
        case "NOT LIKE":
            return column.not_like(value)  # type: ignore[no-any-return]
        case "ILIKE":
            return column.ilike(value)  # type: ignore[no-any-return]
        case "NOT ILIKE":
            return column.not_ilike(value)  # type: ignore[no-any-return]
        case "IN":
            return column.in_(list(value))  # type: ignore[no-any-return]
        case "NOT IN":
            return column.not_in(list(value))  # type: ignore[no-any-return]
        case "IS NULL":
            return column.is_(None)  # type: ignore[no-any-return]
        case "IS NOT NULL":
            return column.is_not(None)  # type: ignore[no-any-return]
    raise AssertionError(f"operator {op!r} passed the parser but has no SQL form")


def _order_column(field: Field, n: int) -> Any:
    if field.kind == "attribute":
        return getattr(t.runs.c, field.key)
    table = _KEYED[field.kind]
    alias = (
        sa.select(table.c.run_id, table.c.value)
        .where(table.c.key == field.key)
        .subquery(f"order_{n}")
    )
    return alias, alias.c.value
