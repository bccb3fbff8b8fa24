"""The HTML page of a drift report: inline CSS, inline SVG charts, no script, no URL.

Only formatting lives here; every number comes from the drift report, the quality report and
the two profiles. :func:`summary_of` gives the headline numbers both the page and the JSON show.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

from loopml._version import __version__
from loopml.monitoring._charts import (
    CURRENT_COLOR,
    REFERENCE_COLOR,
    category_bars,
    fmt_value,
    histogram,
)

if TYPE_CHECKING:
    from loopml.monitoring.drift import ColumnDrift, DriftReport
    from loopml.monitoring.profile import ColumnProfile, DatasetProfile
    from loopml.monitoring.quality import QualityReport

__all__ = ["render_html", "summary_of"]


# -- what the summary and the tables show -----------------------------------------------------
def _quality_counts(quality: QualityReport) -> dict[str, int]:
    per_column = list(quality.columns.values())
    return {
        "missing_columns": len(quality.missing_columns),
        "extra_columns": len(quality.extra_columns),
        "all_null_columns": len(quality.all_null_columns),
        "out_of_range_columns": sum(1 for c in per_column if c.out_of_range),
        "new_category_columns": sum(1 for c in per_column if c.new_categories),
        "type_changed_columns": sum(1 for c in per_column if c.type_changed),
    }


def summary_of(
    drift: DriftReport, quality: QualityReport, target_drift: ColumnDrift | None
) -> dict[str, Any]:
    """Rows, columns, drifted columns and share, verdicts and data-quality counts."""
    tested = [c for c in drift.columns.values() if not c.message]
    return {
        "rows_reference": drift.n_reference,
        "rows_current": drift.n_current,
        "columns": len(drift.columns),
        "columns_tested": len(tested),
        "drifted_columns": [c.name for c in drift.columns.values() if c.drifted],
        "share_drifted": drift.share_drifted,
        "share_threshold": drift.share_threshold,
        "dataset_drifted": drift.dataset_drifted,
        "target_drifted": None if target_drift is None else target_drift.drifted,
        "prediction_drifted": None if drift.prediction is None else drift.prediction.drifted,
        "quality": _quality_counts(quality),
    }


# -- HTML -------------------------------------------------------------------------------------
_CSS = f"""
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;padding:24px 32px;color:#1f2328;background:#fff;font-size:14px;line-height:1.45}}
h1{{font-size:22px;margin:0 0 4px}} h2{{font-size:17px;margin:28px 0 10px;
border-bottom:1px solid #d0d7de;padding-bottom:4px}} h3{{font-size:15px;margin:0}}
.meta,.note{{color:#656d76;font-size:12px}}
.cards{{display:flex;flex-wrap:wrap;gap:12px;margin-top:16px}}
.card{{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;min-width:130px}}
.card .v{{font-size:20px;font-weight:600}} .card .k{{color:#656d76;font-size:12px}}
.card.bad{{border-color:#cf222e;background:#ffebe9}}
.card.good{{border-color:#1a7f37;background:#dafbe1}}
.warnings{{border:1px solid #d4a72c;background:#fff8c5;border-radius:6px;padding:8px 16px;
margin-top:16px}} .warnings ul{{margin:4px 0;padding-left:18px}}
table{{border-collapse:collapse;margin:6px 0}} th,td{{border-bottom:1px solid #d0d7de;
padding:4px 10px;text-align:left;vertical-align:top}} th{{background:#f6f8fa;font-size:12px}}
td.n{{text-align:right;font-variant-numeric:tabular-nums}}
.badge{{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600}}
.drifted,.alert{{background:#ffebe9;color:#cf222e}} .ok{{background:#dafbe1;color:#1a7f37}}
.warn{{background:#fff8c5;color:#9a6700}} .untested{{background:#eaeef2;color:#656d76}}
details{{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:8px 0}}
summary{{cursor:pointer}} summary h3{{display:inline}}
.chart{{max-width:100%;height:auto;margin-top:8px}} .chart text{{fill:#1f2328}}
.ref{{color:{REFERENCE_COLOR}}} .cur{{color:{CURRENT_COLOR}}}
"""


def _e(value: object) -> str:
    return escape(str(value))


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _badge(column: ColumnDrift) -> str:
    if column.message:
        return '<span class="badge untested">not tested</span>'
    if column.drifted:
        return '<span class="badge drifted">drifted</span>'
    if column.level == "warn":
        return '<span class="badge warn">warn</span>'
    return '<span class="badge ok">ok</span>'


def _card(key: str, value: str, css: str = "") -> str:
    return f'<div class="card {css}"><div class="v">{value}</div><div class="k">{key}</div></div>'


def _summary_html(summary: Mapping[str, Any], drift: DriftReport) -> str:
    drifted = len(summary["drifted_columns"])
    verdict = "drift detected" if summary["dataset_drifted"] else "no dataset drift"
    q = summary["quality"]
    cards = [
        _card("reference rows", f"{summary['rows_reference']:,}"),
        _card("current rows", f"{summary['rows_current']:,}"),
        _card("columns compared", f"{summary['columns']}"),
        _card(
            f"drifted columns (share {summary['share_drifted']:.0%}; dataset drift at "
            f"&ge; {summary['share_threshold']:.0%})",
            f"{drifted} of {summary['columns_tested']}",
        ),
        _card("dataset", verdict, "bad" if summary["dataset_drifted"] else "good"),
    ]
    for role in ("target", "prediction"):
        flag = summary[f"{role}_drifted"]
        if flag is not None:
            cards.append(_card(role, "drifted" if flag else "no drift", "bad" if flag else "good"))
    if drift.multivariate is not None:
        m = drift.multivariate
        cards.append(
            _card(
                f"multivariate ({_e(m.method)} {fmt_value(m.statistic)})",
                "drifted" if m.drifted else "no drift",
                "bad" if m.drifted else "good",
            )
        )
    issues = (
        f"{q['missing_columns']} missing, {q['extra_columns']} extra, "
        f"{q['all_null_columns']} all-null columns; {q['out_of_range_columns']} out of range, "
        f"{q['new_category_columns']} with new categories, {q['type_changed_columns']} "
        "with changed type"
    )
    correction = (
        f'<p class="note">p-values corrected for multiple tests ({_e(drift.correction)})</p>'
        if drift.correction
        else ""
    )
    return (
        f'<section><div class="cards">{"".join(cards)}</div>'
        f'<p class="note">data quality: {issues}</p>{correction}</section>'
    )


def _warnings_html(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    return f'<section class="warnings"><strong>Warnings</strong><ul>{items}</ul></section>'


def _metrics_html(metrics: Mapping[str, float], reference_metrics: Mapping[str, float]) -> str:
    if not metrics and not reference_metrics:
        return ""
    names = list(dict.fromkeys([*metrics, *reference_metrics]))
    rows = "".join(
        f'<tr><td>{_e(n)}</td><td class="n">{fmt_value(reference_metrics.get(n))}</td>'
        f'<td class="n">{fmt_value(metrics.get(n))}</td></tr>'
        for n in names
    )
    return (
        "<section><h2>Prediction quality</h2><table><tr><th>metric</th><th>reference</th>"
        f"<th>current</th></tr>{rows}</table></section>"
    )


def _drift_rows(
    drift: DriftReport, target_drift: ColumnDrift | None
) -> list[tuple[str, ColumnDrift]]:
    rows = [("feature", c) for c in drift.columns.values()]
    rows.sort(key=lambda r: not r[1].drifted)  # drifted first, in column order
    if target_drift is not None:
        rows.append(("target", target_drift))
    if drift.prediction is not None:
        rows.append(("prediction", drift.prediction))
    return rows


def _drift_table(rows: Sequence[tuple[str, ColumnDrift]]) -> str:
    head = (
        "<tr><th>column</th><th>role</th><th>kind</th><th>method</th><th>statistic</th>"
        "<th>p-value</th><th>threshold</th><th>drift</th><th>missing ref</th>"
        "<th>missing cur</th><th>unseen categories</th></tr>"
    )
    body = []
    for i, (role, c) in enumerate(rows):
        unseen = ", ".join(c.unseen_categories[:10]) + (
            f" (+{len(c.unseen_categories) - 10})" if len(c.unseen_categories) > 10 else ""
        )
        body.append(
            f'<tr><td><a href="#col-{i}">{_e(c.name)}</a></td><td>{role}</td>'
            f"<td>{_e(c.kind)}</td><td>{_e(c.method or '-')}</td>"
            f'<td class="n">{fmt_value(c.statistic)}</td>'
            f'<td class="n">{fmt_value(c.p_value)}</td>'
            f'<td class="n">{fmt_value(c.threshold)}</td><td>{_badge(c)}</td>'
            f'<td class="n">{_rate(c.missing_rate_reference)}</td>'
            f'<td class="n">{_rate(c.missing_rate_current)}</td><td>{_e(unseen)}</td></tr>'
        )
    return f"<section><h2>Drift by column</h2><table>{head}{''.join(body)}</table></section>"


def _quality_html(quality: QualityReport) -> str:
    parts = []
    for label, names in (
        ("missing from the current data", quality.missing_columns),
        ("only in the current data", quality.extra_columns),
        ("all null", quality.all_null_columns),
    ):
        if names:
            parts.append(f"<p>Columns {label}: {_e(', '.join(names))}</p>")
    rows = []
    for name, c in quality.columns.items():
        growing = (c.missing_rate_current or 0.0) > (c.missing_rate_reference or 0.0)
        if not (c.out_of_range or c.new_categories or c.type_changed or growing):
            continue
        new = ", ".join(c.new_categories)
        rows.append(
            f'<tr><td>{_e(name)}</td><td class="n">{_rate(c.missing_rate_reference)}</td>'
            f'<td class="n">{_rate(c.missing_rate_current)}</td>'
            f'<td class="n">{c.out_of_range}</td><td>{_e(new)}</td>'
            f"<td>{'yes' if c.type_changed else ''}</td></tr>"
        )
    if rows:
        parts.append(
            "<table><tr><th>column</th><th>missing ref</th><th>missing cur</th>"
            "<th>out of reference range</th><th>new categories</th><th>type changed</th></tr>"
            f"{''.join(rows)}</table>"
        )
    if not parts:
        parts.append('<p class="note">no data-quality issues found</p>')
    return f"<section><h2>Data quality</h2>{''.join(parts)}</section>"


def _stats_table(ref: ColumnProfile | None, cur: ColumnProfile | None) -> str:
    def cell(p: ColumnProfile | None, get: str) -> str:
        if p is None:
            return "-"
        if get == "median":
            return fmt_value(p.quantiles.get("0.5"))
        value = getattr(p, get)
        return _e(value) if isinstance(value, str) else fmt_value(value)

    numeric = any(p is not None and p.kind == "numerical" for p in (ref, cur))
    stats = ["count", "missing", "distinct"]
    stats += ["mean", "std", "min", "median", "max"] if numeric else []
    head = "".join(f"<th>{s}</th>" for s in stats)
    rows = "".join(
        f'<tr><td class="{css}">{side}</td>'
        + "".join(f'<td class="n">{cell(p, s)}</td>' for s in stats)
        + "</tr>"
        for side, css, p in (("reference", "ref", ref), ("current", "cur", cur))
    )
    return f"<table><tr><th></th>{head}</tr>{rows}</table>"


def _chart(name: str, ref: ColumnProfile | None, cur: ColumnProfile | None) -> str:
    if ref is None:
        return '<p class="note">not in the reference profile: nothing to plot</p>'
    empty: Mapping[str, int] = {}
    if ref.kind == "numerical":
        cur_counts = cur.bin_counts if cur is not None and cur.bin_edges == ref.bin_edges else ()
        if cur is not None and not cur_counts and cur.count:
            return (
                '<p class="note">the current values were not binned on the reference bins: '
                "nothing to plot</p>"
            )
        return histogram(ref.bin_edges, ref.bin_counts, cur_counts, label=name)
    if ref.kind in ("categorical", "binary"):
        return category_bars(ref.categories, cur.categories if cur else empty, label=name)
    return f'<p class="note">{_e(ref.kind)} column: no distribution plot</p>'


def _column_html(
    i: int,
    role: str,
    c: ColumnDrift,
    reference: DatasetProfile,
    current: DatasetProfile,
) -> str:
    ref, cur = reference.columns.get(c.name), current.columns.get(c.name)
    test = (
        f"{_e(c.method)}: statistic {fmt_value(c.statistic)}"
        + (f", p-value {fmt_value(c.p_value)}" if c.p_value is not None else "")
        + f", threshold {fmt_value(c.threshold)}"
        if c.method
        else ""
    )
    message = f'<p class="note">{_e(c.message)}</p>' if c.message else ""
    opened = " open" if c.drifted or role != "feature" else ""
    return (
        f'<details id="col-{i}"{opened}><summary><h3>{_e(c.name)}</h3> {_badge(c)} '
        f'<span class="note">{role}, {_e(c.kind)}; {test}</span></summary>{message}'
        f"{_stats_table(ref, cur)}{_chart(c.name, ref, cur)}</details>"
    )


def render_html(
    drift: DriftReport,
    quality: QualityReport,
    reference: DatasetProfile,
    current: DatasetProfile,
    *,
    title: str,
    metrics: Mapping[str, float] | None = None,
    reference_metrics: Mapping[str, float] | None = None,
    target_drift: ColumnDrift | None = None,
    warnings: Sequence[str] = (),
    created_ms: int | None = None,
) -> str:
    """The report as one HTML page that needs no network: inline CSS and SVG, no script.

    ``warnings`` default to the drift report's own; pass the full list to show more.
    """
    when = datetime.fromtimestamp(
        (created_ms if created_ms is not None else time.time() * 1000) / 1000, UTC
    ).strftime("%Y-%m-%d %H:%M:%S UTC")
    summary = summary_of(drift, quality, target_drift)
    rows = _drift_rows(drift, target_drift)
    shown = list(dict.fromkeys([*warnings, *drift.warnings]))
    columns = "".join(
        _column_html(i, role, c, reference, current) for i, (role, c) in enumerate(rows)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{_e(title)}</h1><p class="meta">created {when} by loopml '
        f'{__version__}; reference <span class="ref">&#9632;</span>, current '
        f'<span class="cur">&#9632;</span></p></header>'
        f"{_summary_html(summary, drift)}{_warnings_html(shown)}"
        f"{_metrics_html(metrics or {}, reference_metrics or {})}"
        f"{_drift_table(rows)}{_quality_html(quality)}"
        f"<section><h2>Distributions</h2>{columns}</section></body></html>\n"
    )
