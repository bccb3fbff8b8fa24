"""Inline SVG charts for the HTML report, drawn from profile counts (no plotting library).

Both charts compare shares (count / non-missing rows), so a reference and a current window of
different sizes sit on one scale. Every label is HTML-escaped; the SVG needs no namespace
attribute inside an HTML5 page, so the report holds no URL at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["CURRENT_COLOR", "REFERENCE_COLOR", "category_bars", "fmt_value", "histogram"]

REFERENCE_COLOR = "#4c78a8"
CURRENT_COLOR = "#f58518"
OTHER = "__other__"

_WIDTH = 640
_MAX_CATEGORIES = 15
_LABEL_CHARS = 24


def fmt_value(value: float | None) -> str:
    """A number in at most four significant digits; ``-`` for None."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4g}"


def _tick(value: float) -> str:
    """A compact axis label: ``0.25``, ``12.5k``, ``3.1M``, ``1.5e-05``."""
    size = abs(value)
    if size == 0 or 1e-2 <= size < 1e3:
        return f"{value:.3g}"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if scale <= size < 1e15:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.2g}"


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _legend(y: int) -> str:
    return (
        f'<g font-size="11"><rect x="44" y="{y}" width="10" height="10" '
        f'fill="{REFERENCE_COLOR}" opacity="0.6"/><text x="58" y="{y + 9}">reference</text>'
        f'<rect x="130" y="{y}" width="10" height="10" fill="{CURRENT_COLOR}" opacity="0.6"/>'
        f'<text x="144" y="{y + 9}">current</text></g>'
    )


def histogram(
    edges: Sequence[float],
    reference_counts: Sequence[int],
    current_counts: Sequence[int],
    *,
    label: str,
) -> str:
    """Overlaid histograms of two windows on the reference's bins.

    ``*_counts`` hold ``len(edges) + 1`` values: below the first edge, one per bin, above the
    last edge (the outer two are drawn only when a window has values there). Each bin takes
    one slot of equal width, and a bar's height is the window's share of rows in that bin.
    """
    n = len(edges) + 1
    ref = list(reference_counts) + [0] * (n - len(reference_counts))
    cur = list(current_counts) + [0] * (n - len(current_counts))
    slots: list[tuple[str, int, int]] = []
    bounds: list[float | None] = []  # the left edge of each slot (None: open below)
    for i in range(n):
        if i == 0:
            name = f"< {fmt_value(edges[0])}" if edges else "all"
        elif i == n - 1:
            name = f">= {fmt_value(edges[-1])}"
        else:
            name = f"[{fmt_value(edges[i - 1])}, {fmt_value(edges[i])}]"
        outer = edges and i in (0, n - 1)
        if outer and not ref[i] and not cur[i]:
            continue
        slots.append((name, ref[i], cur[i]))
        bounds.append(edges[i - 1] if i > 0 else None)
    if not slots or not (sum(ref) or sum(cur)):
        return '<p class="note">no values to plot</p>'
    ref_shares = _shares([s[1] for s in slots])
    cur_shares = _shares([s[2] for s in slots])
    top = max(max(ref_shares), max(cur_shares)) or 1.0
    left, right, plot_top, plot_h = 44, 10, 24, 150
    slot_w = (_WIDTH - left - right) / len(slots)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {_WIDTH} {plot_top + plot_h + 44}" '
        f'width="{_WIDTH}" height="{plot_top + plot_h + 44}" '
        f'aria-label="{escape(label)}">',
        _legend(4),
        f'<line x1="{left}" y1="{plot_top + plot_h}" x2="{_WIDTH - right}" '
        f'y2="{plot_top + plot_h}" stroke="#888"/>',
    ]
    for frac in (0.5, 1.0):
        y = plot_top + plot_h - frac * plot_h
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{_WIDTH - right}" y2="{y:.1f}" '
            f'stroke="#ddd"/><text x="{left - 4}" y="{y + 4:.1f}" font-size="10" '
            f'text-anchor="end">{_pct(top * frac)}</text>'
        )
    for i, ((name, _, _), rs, cs) in enumerate(zip(slots, ref_shares, cur_shares, strict=True)):
        x = left + i * slot_w
        tip = escape(f"{name}: reference {_pct(rs)}, current {_pct(cs)}")
        for share, color in ((rs, REFERENCE_COLOR), (cs, CURRENT_COLOR)):
            h = share / top * plot_h
            parts.append(
                f'<rect x="{x + 0.5:.1f}" y="{plot_top + plot_h - h:.1f}" '
                f'width="{max(slot_w - 1, 1):.1f}" height="{h:.1f}" fill="{color}" '
                f'opacity="0.55"><title>{tip}</title></rect>'
            )
    # The edge values at slot boundaries, at most about 8 of them; open ends are named.
    ticks = [*bounds, edges[-1] if edges and slots[-1][0][0] != ">" else None]
    step = max(1, math.ceil(len(ticks) / 8))
    base = plot_top + plot_h + 14
    for i, value in enumerate(ticks):
        if value is not None and i % step == 0:
            x = left + i * slot_w
            parts.append(
                f'<line x1="{x:.1f}" y1="{base - 14}" x2="{x:.1f}" y2="{base - 10}" '
                f'stroke="#888"/><text x="{x:.1f}" y="{base}" font-size="10" '
                f'text-anchor="middle">{_tick(value)}</text>'
            )
    for i, (name, _, _) in enumerate(slots):
        if name[0] in "<>":
            x = left + (i + 0.5) * slot_w
            side = "below" if name[0] == "<" else "above"
            parts.append(
                f'<text x="{x:.1f}" y="{base + 13}" font-size="9" text-anchor="middle" '
                f'font-style="italic">{side}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def category_bars(reference: Mapping[str, int], current: Mapping[str, int], *, label: str) -> str:
    """Side-by-side bars of each category's share in the two windows.

    The categories with the largest share in either window get a row each;
    the rest, and the profiles' own ``__other__`` bucket, share one "other" row.
    """
    total_ref, total_cur = sum(reference.values()), sum(current.values())

    def weight(name: str) -> tuple[float, str]:
        ref_share = reference.get(name, 0) / total_ref if total_ref else 0.0
        cur_share = current.get(name, 0) / total_cur if total_cur else 0.0
        return -max(ref_share, cur_share), name

    names = sorted((set(reference) | set(current)) - {OTHER}, key=weight)
    shown, rest = names[:_MAX_CATEGORIES], names[_MAX_CATEGORIES:]
    rows = [(name, reference.get(name, 0), current.get(name, 0)) for name in shown]
    other_ref = reference.get(OTHER, 0) + sum(reference.get(k, 0) for k in rest)
    other_cur = current.get(OTHER, 0) + sum(current.get(k, 0) for k in rest)
    if other_ref or other_cur:
        more = f" ({len(rest)} more)" if rest else ""
        rows.append((f"other{more}", other_ref, other_cur))
    if not rows or not (total_ref or total_cur):
        return '<p class="note">no values to plot</p>'
    shares = [
        (name, r / total_ref if total_ref else 0.0, c / total_cur if total_cur else 0.0)
        for name, r, c in rows
    ]
    top = max(max(r, c) for _, r, c in shares) or 1.0
    label_w, bar_w, row_h, head = 170, 380, 24, 22
    height = head + row_h * len(shares) + 6
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" '
        f'height="{height}" aria-label="{escape(label)}">',
        _legend(4),
    ]
    for i, (name, rs, cs) in enumerate(shares):
        y = head + i * row_h
        tip = escape(f"{name}: reference {_pct(rs)}, current {_pct(cs)}")
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">'
            f"<title>{escape(name)}</title>{escape(_short(name))}</text>"
        )
        for j, (share, color) in enumerate(((rs, REFERENCE_COLOR), (cs, CURRENT_COLOR))):
            w = share / top * bar_w
            by = y + 2 + j * 10
            parts.append(
                f'<rect x="{label_w}" y="{by}" width="{w:.1f}" height="9" fill="{color}" '
                f'opacity="0.8"><title>{tip}</title></rect><text x="{label_w + w + 4:.1f}" '
                f'y="{by + 8}" font-size="9">{_pct(share)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
